"""Loading spec files: size and encoding checks, imports, the prelude, name scopes.

An `import "path.rnet"` is resolved against the importing file's folder and must stay
inside the main spec's folder tree (or a search path the caller names): no `..` escape
and no symbolic link that leads out of it. Each file sees the prelude's blocks, the
blocks defined by the files it imports, and its own.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path

from resnet_dsl.errors import PRELUDE_NAME, Diagnostic, Note, RnetError, SourceLookup, Span
from resnet_dsl.frontend import ast
from resnet_dsl.frontend.parse import grammar_path, parse, parser_cache
from resnet_dsl.limits import DEFAULT_LIMITS, Limits, raise_hint

PRELUDE_PATH = Path(__file__).resolve().parent / "prelude.rnet"


@dataclass(frozen=True)
class BlockRef:
    """A block definition and the file whose scope its body is resolved in."""

    definition: ast.BlockDef
    file: SourceFile


@dataclass(eq=False)
class SourceFile:
    name: str          # as shown in messages
    text: str
    module: ast.Module
    directory: Path | None
    real_path: Path | None = None
    blocks: dict[str, BlockRef] = field(default_factory=dict)  # visible in this file
    networks: dict[str, ast.NetworkDef | ast.NetworkAlias] = field(default_factory=dict)

    def own_blocks(self) -> dict[str, BlockRef]:
        return {b.name: BlockRef(b, self) for b in self.module.blocks}


@dataclass(eq=False)
class Program:
    """The main file and everything it imports, with scopes resolved."""

    main: SourceFile
    files: list[SourceFile]
    sources: SourceLookup

    def network(self, name: str | None = None) -> ast.NetworkDef | ast.NetworkAlias:
        """The network to compile: `name`, else the only one, else the one named like the file."""
        networks = self.main.module.networks
        if name is not None:
            if name in self.main.networks:
                return self.main.networks[name]
            from resnet_dsl.errors import did_you_mean
            available = ", ".join(self.main.networks) or "none"
            raise RnetError(Diagnostic(
                "E105", f"no network `{name}` in {self.main.name} (it knows: {available})",
                None, did_you_mean(name, self.main.networks)))
        if len(networks) == 1:
            return networks[0]
        stem = Path(self.main.name).stem
        for net in networks:
            if net.name == stem:
                return net
        if not networks:
            raise RnetError(Diagnostic("E105", f"{self.main.name} defines no network",
                                       Span(self.main.name, 1, 1, 1, 2),
                                       "add `network NAME { input 3x32x32 ... }`"))
        names = ", ".join(n.name for n in networks)
        raise RnetError(Diagnostic(
            "E105", f"{self.main.name} defines several networks ({names}); choose one",
            None, "pass --network NAME (Python: network=NAME)"))


@functools.lru_cache(maxsize=1)
def prelude() -> SourceFile:
    text = PRELUDE_PATH.read_text(encoding="utf-8")
    module = _parse_prelude(text)
    sf = SourceFile(PRELUDE_NAME, text, module, None)
    sf.blocks = sf.own_blocks()
    return sf


class _TreeUnpickler(pickle.Unpickler):
    """Unpickles a syntax tree and nothing else: the AST's classes and `Span`."""

    def find_class(self, module: str, name: str):
        if (module == ast.__name__ and isinstance(getattr(ast, name, None), type)) or \
                (module == "resnet_dsl.errors" and name == "Span"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a syntax tree")


def _parse_prelude(text: str) -> ast.Module:
    """The prelude's syntax tree, from the parser cache's folder when it is there.

    Parsing the prelude costs about 25 ms a process, loading its pickled tree about 2;
    every `rnetc` command pays it. The file's name holds a hash of what the tree depends
    on (the prelude, the grammar, the AST classes and the transformer that builds them,
    Python's version), so an edit anywhere makes a new file and a stale tree is never
    used; the folder rules are the LALR cache's (`parse.parser_cache`), and a file that
    does not load is replaced.
    """
    cache = parser_cache()
    if cache is None:
        return parse(text, PRELUDE_NAME)
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for part in (text.encode(), grammar_path().read_bytes(), (here / "ast.py").read_bytes(),
                 (here / "parse.py").read_bytes(), sys.version.encode()):
        digest.update(hashlib.sha256(part).digest())
    path = cache.with_name(f"prelude-{digest.hexdigest()[:24]}.pickle")
    try:
        with open(path, "rb") as f:
            module = _TreeUnpickler(f).load()
        if isinstance(module, ast.Module):
            return module
    except FileNotFoundError:
        pass
    except Exception:  # noqa: BLE001 - a damaged or foreign file: parse and replace it
        pass
    module = parse(text, PRELUDE_NAME)
    try:
        for old in cache.parent.glob("prelude-*.pickle"):   # trees of other versions
            old.unlink(missing_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(module, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass
    return module


def load_program(path: str | os.PathLike | None = None, *, text: str | None = None,
                 name: str | None = None, limits: Limits = DEFAULT_LIMITS,
                 search_paths: tuple[str | os.PathLike, ...] = ()) -> Program:
    """Read and parse a spec and its imports. Give a `path`, or the `text` itself.

    >>> prog = load_program(text='network n { input 1x4x4; conv 3x3 2 }', name='n.rnet')
    >>> prog.network().name
    'n'
    """
    loader = _Loader(limits, search_paths)
    loader.sources.add(PRELUDE_NAME, prelude().text)
    try:
        try:
            real = Path(path).resolve() if path is not None else None
        except (OSError, RuntimeError, ValueError) as exc:
            raise RnetError(Diagnostic("E002", f"cannot read {os.fspath(path)!r}: {exc}")) from None
        if text is None:
            if path is None:
                raise TypeError("load_program needs a path or text")
            display = os.fspath(path)
            text = loader.read(Path(path), display, None)
            directory = Path(path).resolve().parent
        else:
            display = name or "<string>"
            directory = Path.cwd().resolve() if path is None else Path(path).resolve().parent
            _check_size(text.encode("utf-8", "replace"), display, None, limits)
        loader.roots = [directory, *(Path(p).resolve() for p in search_paths)]
        loader.main_name = display
        main = loader.load(text, display, directory, real, stack=())
        if loader.diagnostics:
            raise RnetError(loader.diagnostics)
    except RnetError as exc:
        exc.sources = loader.sources
        raise
    return Program(main, loader.files, loader.sources)


def _check_size(data: bytes, display: str, span: Span | None, limits: Limits) -> None:
    if len(data) > limits.max_file_bytes:
        raise RnetError(Diagnostic(
            "E601", f"{display} is {len(data):,} bytes; the limit is {limits.max_file_bytes:,}",
            span, raise_hint("max_file_bytes")))


class _Loader:
    def __init__(self, limits: Limits, search_paths) -> None:
        self.limits = limits
        self.roots: list[Path] = []
        self.main_name = ""
        self.by_real_path: dict[Path, SourceFile] = {}
        self.files: list[SourceFile] = []
        self.sources = SourceLookup()
        self.diagnostics: list[Diagnostic] = []

    def read(self, path: Path, display: str, span: Span | None) -> str:
        try:
            if not path.is_file():
                if path.exists():   # a folder, a device (/dev/zero would never end), a socket
                    what = "a folder, not a spec file" if path.is_dir() else \
                        "not a regular file (a device, pipe or socket)"
                    raise RnetError(Diagnostic("E501" if span else "E002", f"{display} is {what}",
                                               span))
                raise FileNotFoundError(path)
            size = path.stat().st_size
            if size > self.limits.max_file_bytes:
                raise RnetError(Diagnostic(
                    "E601", f"{display} is {size:,} bytes; the limit is "
                    f"{self.limits.max_file_bytes:,}", span,
                    raise_hint("max_file_bytes")))
            data = path.read_bytes()
        except RnetError:
            raise
        except FileNotFoundError:
            code = "E501" if span else "E002"
            raise RnetError(Diagnostic(code, f"cannot find {display}", span)) from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise RnetError(Diagnostic("E002", f"cannot read {display}: {reason}", span)) from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise RnetError(Diagnostic(
                "E003", f"{display} is not UTF-8 text (byte {exc.start}, line {line})", span)) from None

    def load(self, text: str, display: str, directory: Path, real: Path | None,
             stack: tuple[Path, ...]) -> SourceFile:
        self.sources.add(display, text)
        module = parse(text, display, self.limits.max_nesting)
        sf = SourceFile(display, text, module, directory, real)
        if real is not None:
            self.by_real_path[real] = sf
        self.files.append(sf)
        visible: dict[str, BlockRef] = dict(prelude().blocks)
        imported_from: dict[str, Span] = {}
        imported_networks: dict[str, ast.NetworkDef | ast.NetworkAlias] = {}
        for imp in module.imports:
            dep = self._import(imp, sf, stack)
            if dep is None:
                continue
            for net in dep.module.networks:
                imported_networks.setdefault(net.name, net)
            for bname, ref in dep.own_blocks().items():
                if bname in imported_from and visible[bname].file is not ref.file:
                    self.diagnostics.append(Diagnostic(
                        "E103", f"block `{bname}` is defined by two imports", imp.span,
                        notes=[Note(imported_from[bname], "the other import")]))
                    continue
                visible[bname] = ref
                imported_from[bname] = imp.span
        seen: dict[str, ast.BlockDef] = {}
        for block in module.blocks:
            if block.name in seen:
                self.diagnostics.append(Diagnostic(
                    "E103", f"block `{block.name}` is defined twice", block.name_span,
                    notes=[Note(seen[block.name].name_span, "first definition")]))
                continue
            if block.name in imported_from:
                self.diagnostics.append(Diagnostic(
                    "E103", f"block `{block.name}` is also defined by an import", block.name_span,
                    notes=[Note(imported_from[block.name], "imported here")],
                    help="rename one of them"))
            seen[block.name] = block
            visible[block.name] = BlockRef(block, sf)
        nets: dict[str, ast.NetworkDef | ast.NetworkAlias] = {}
        for net in module.networks:
            if net.name in nets:
                self.diagnostics.append(Diagnostic(
                    "E103", f"network `{net.name}` is defined twice", net.name_span,
                    notes=[Note(nets[net.name].name_span, "first definition")]))
            nets.setdefault(net.name, net)
        sf.blocks = visible
        sf.networks = {**imported_networks, **nets}
        return sf

    def _import(self, imp: ast.Import, importer: SourceFile, stack: tuple[Path, ...]) -> SourceFile | None:
        assert importer.directory is not None
        if len(stack) + 1 > self.limits.max_import_depth:
            self.diagnostics.append(Diagnostic(
                "E601", f"imports nest deeper than {self.limits.max_import_depth} files", imp.span,
                raise_hint("max_import_depth")))
            return None
        raw = Path(imp.path)
        display = os.path.normpath(os.path.join(os.path.dirname(importer.name), imp.path)) \
            if not raw.is_absolute() else imp.path
        target = (importer.directory / raw)
        try:
            real = target.resolve(strict=False)
        except (OSError, RuntimeError, ValueError):  # NUL bytes, symlink loops
            self.diagnostics.append(Diagnostic("E501", f"cannot resolve import `{imp.path}`", imp.span))
            return None
        if not any(real == root or root in real.parents for root in self.roots):
            self.diagnostics.append(Diagnostic(
                "E503", f"import `{imp.path}` leads outside the spec's folder "
                f"({os.path.dirname(self.main_name) or '.'})",
                imp.span, "keep imported specs beside the importing spec, or pass a search path"))
            return None
        if real in stack or real == importer.real_path:
            self.diagnostics.append(Diagnostic(
                "E502", f"import cycle: {importer.name} imports `{imp.path}`, which imports it back",
                imp.span))
            return None
        if real in self.by_real_path:
            return self.by_real_path[real]
        try:
            text = self.read(real, display, imp.span)
            chain = stack + ((importer.real_path,) if importer.real_path else ())
            return self.load(text, display, real.parent, real, chain)
        except RnetError as exc:
            self.diagnostics.extend(exc.diagnostics)
            return None
