"""`rnetc lsp`: the language server (pygls, over stdio).

A thin adapter: each open document becomes a `tooling.document.Document`, rebuilt on
open, change and save, whose diagnostics are published; hover, go-to-definition,
completion and whole-document formatting (`tooling.format`) answer from it. Imported
only by `rnetc lsp`, because pygls is an optional dependency (the `lsp` extra); nothing
may print to stdout here, which carries the protocol.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from resnet_dsl.version import __version__
from resnet_dsl.errors import RnetError
from resnet_dsl.tooling.document import Completion, Document, Location, Range


_KINDS = {
    "keyword": lsp.CompletionItemKind.Keyword,
    "layer": lsp.CompletionItemKind.Function,
    "block": lsp.CompletionItemKind.Class,
    "function": lsp.CompletionItemKind.Function,
    "policy": lsp.CompletionItemKind.EnumMember,
    "variable": lsp.CompletionItemKind.Variable,
}


class RnetServer(LanguageServer):
    """The server and the documents it has analysed, by URI."""

    def __init__(self) -> None:
        super().__init__("rnetc", __version__)
        self.documents: dict[str, Document] = {}

    def analyse(self, uri: str) -> Document:
        text_document = self.workspace.get_text_document(uri)
        path = to_fs_path(uri) if uri.startswith("file:") else None
        try:
            doc = Document(text_document.source, Path(path) if path else None,
                           name="" if path else uri)
        except Exception as exc:  # an rnetc bug: say so in the editor's log, keep serving
            self.window_log_message(lsp.LogMessageParams(
                type=lsp.MessageType.Error, message=f"rnetc could not analyse {uri}: {exc!r}"))
            return self.documents.get(uri) or Document("", None, name=uri)
        self.documents[uri] = doc
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, version=text_document.version,
            diagnostics=[_diagnostic(p) for p in doc.problems]))
        return doc

    def document(self, uri: str) -> Document:
        doc = self.documents.get(uri)
        return doc if doc is not None else self.analyse(uri)


def build_server() -> RnetServer:
    """The server with its features registered (not yet running)."""
    server = RnetServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: RnetServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.analyse(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: RnetServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.analyse(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: RnetServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.analyse(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: RnetServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.documents.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: RnetServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.document(params.text_document.uri)
        text = doc.hover(params.position.line, params.position.character)
        if text is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: RnetServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        doc = ls.document(params.text_document.uri)
        found = doc.definition(params.position.line, params.position.character)
        return _location(found) if found is not None else None

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=["="]))
    def completion(ls: RnetServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.document(params.text_document.uri)
        items = [_completion(c) for c in doc.completions(params.position.line, params.position.character)]
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: RnetServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        from resnet_dsl.tooling.format import format_source

        source = ls.workspace.get_text_document(params.text_document.uri).source
        try:
            formatted = format_source(source, params.text_document.uri)
        except RnetError:
            return None  # the syntax error is already a diagnostic
        if formatted == source:
            return []
        lines = source.split("\n")
        whole = lsp.Range(start=lsp.Position(line=0, character=0),
                          end=lsp.Position(line=len(lines), character=0))
        return [lsp.TextEdit(range=whole, new_text=formatted)]

    return server


def serve() -> None:
    """Run the server on stdin/stdout until the client says `exit`."""
    build_server().start_io()


def _range(r: Range) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=r.start_line, character=r.start_char),
                     end=lsp.Position(line=r.end_line, character=r.end_char))


def _location(loc: Location) -> lsp.Location:
    return lsp.Location(uri=from_fs_path(loc.path) or loc.path, range=_range(loc.range))


def _diagnostic(problem) -> lsp.Diagnostic:
    return lsp.Diagnostic(
        range=_range(problem.range),
        message=problem.message,
        severity=lsp.DiagnosticSeverity.Error,
        code=problem.code,
        code_description=None,
        source="rnetc",
        related_information=[
            lsp.DiagnosticRelatedInformation(location=_location(r.location), message=r.message)
            for r in problem.related] or None,
    )


def _completion(c: Completion) -> lsp.CompletionItem:
    return lsp.CompletionItem(label=c.label, kind=_KINDS[c.kind], detail=c.detail or None)
