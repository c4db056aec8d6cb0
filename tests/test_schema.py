"""`rnetc schema` validates `rnetc ir --json` for every shipped spec, and rejects broken IR."""

import json

import jsonschema
import pytest
from conftest import spec_files

from resnet_dsl.cli import main


@pytest.fixture(scope="module")
def validator():
    from resnet_dsl.tooling.schema import ir_json_schema

    schema = ir_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _ir_json(capsys, path) -> dict:
    assert main(["ir", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_schema_command_prints_the_schema(capsys, validator):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == validator.schema
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.name)
def test_ir_json_of_every_spec_is_valid(path, capsys, validator):
    document = _ir_json(capsys, path)
    errors = [e.message for e in validator.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize("edit", [
    lambda d: d["nodes"]["conv1"].update(kernel=[7, 7, 7]),      # a pair of three
    lambda d: d["nodes"]["conv1"].update(op="convolution"),      # no such op
    lambda d: d["stages"]["layer1"].update(policy="Z"),          # no such policy
    lambda d: d.update(surprise=1),                              # extra field
    lambda d: d["totals"].update(params="many"),                 # wrong type
])
def test_schema_rejects_broken_ir(edit, capsys, validator):
    from conftest import SPECS

    document = _ir_json(capsys, SPECS / "resnet18.rnet")
    edit(document)
    assert not validator.is_valid(document)
