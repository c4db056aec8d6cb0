"""The ```rnet examples of the language docs are real: they parse, are formatted, compile,
and an example that fails shows the exact error rnetc prints (right after it).
(docs/errors.md's examples are broken on purpose; tests/errors/ checks those.)"""

import re

import pytest
from conftest import REPO, SPECS

from resnet_dsl.compiler import compile_network
from resnet_dsl.errors import RnetError
from resnet_dsl.frontend.parse import parse
from resnet_dsl.frontend.source import load_program
from resnet_dsl.tooling.format import format_source


def _examples():
    for doc in (REPO / "docs" / "language.md", REPO / "docs" / "tooling.md"):
        text = doc.read_text(encoding="utf-8")
        for i, block in enumerate(re.findall(r"^```rnet\n(.*?)^```", text, flags=re.S | re.M)):
            yield pytest.param(doc, block, id=f"{doc.stem}-{i}")


@pytest.mark.parametrize("doc, example", list(_examples()))
def test_doc_example(doc, example):
    module = parse(example, "example.rnet")
    assert format_source(example) == example
    for net in module.networks:
        name = f"{net.name}.rnet"
        # Imports resolve as if the example sat in specs/.
        program = load_program(SPECS / name, text=example, name=name)
        try:
            compile_network(program, network=net.name)
        except RnetError as exc:
            rendered = exc.render()
            assert f"```\n{rendered}\n```" in doc.read_text(encoding="utf-8"), rendered
