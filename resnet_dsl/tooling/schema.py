"""The JSON Schema of the IR's JSON form (`rnetc ir --json`), from the pydantic models.

Tools built around rnetc (dashboards, converters, other languages' bindings) validate
against it. It is generated, never written by hand, so it cannot drift from the IR.
"""

from __future__ import annotations

from resnet_dsl.version import __version__

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def ir_json_schema() -> dict:
    """The schema that every `Network.model_dump_json()` output is valid against.

    >>> schema = ir_json_schema()
    >>> schema["title"], sorted(schema["properties"])[:3]
    ('Network', ['arguments', 'blocks', 'file'])
    """
    from resnet_dsl.ir.graph import Network

    # "serialization": the schema of what `model_dump_json` writes (tuples as arrays).
    schema = _select_by_tag(Network.model_json_schema(mode="serialization"))
    return {
        "$schema": DIALECT,
        "$comment": f"rnetc {__version__}: the JSON form of `rnetc ir --json` (Network.model_dump_json())",
        **schema,
    }


def _select_by_tag(schema):
    """Rewrite pydantic's tagged unions (`oneOf` + an OpenAPI `discriminator`, which JSON
    Schema validators ignore) as `if op == tag then that node's schema`.

    Same documents accepted; but a validator checks a node against its own type only,
    not against all eleven (2-3x faster on ResNet-1001's IR: docs/benchmarks.md), and
    an error names the field that is wrong instead of "not valid under any of the given
    schemas".
    """
    if isinstance(schema, list):
        return [_select_by_tag(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _select_by_tag(value) for key, value in schema.items()}
    tag = out.get("discriminator")
    if isinstance(tag, dict) and "oneOf" in out and "mapping" in tag:
        field = tag["propertyName"]
        mapping = tag["mapping"]
        del out["discriminator"], out["oneOf"]
        out.update({
            "type": "object",
            "required": [field],
            "properties": {field: {"enum": sorted(mapping)}},
            "allOf": [{"if": {"properties": {field: {"const": value}}}, "then": {"$ref": ref}}
                      for value, ref in sorted(mapping.items())],
        })
    return out
