"""What an exported file records about where it came from (ONNX `metadata_props`).

Keys are namespaced `rnetc.`; values are strings (JSON where structured), so that
Netron's model properties and `onnx.load(path).metadata_props` show them as they are:

    rnetc.version      the rnetc that wrote the file
    rnetc.network      the spec's network name        rnetc.spec_file   its file name
    rnetc.spec         the spec's source text         rnetc.imports     JSON {file: text}
    rnetc.parameters   JSON of the network's parameter values (defaults and --set)
    rnetc.input_shape  CxHxW                          rnetc.batch       "dynamic" or N
    rnetc.weights      the weights file's name, or "random initialisation"
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from resnet_dsl.ir.graph import Network

RANDOM_WEIGHTS = "random initialisation"


def metadata(net: Network, *, sources: Mapping[str, str], batch: int | None,
             weights: str) -> dict[str, str]:
    """The metadata of an export of `net`; `sources` maps file names to text, the spec's
    own file first, then its imports (may be empty: the text is then not recorded).

    >>> from resnet_dsl.compiler import compile_network
    >>> net = compile_network("network n(w = 4) { input 3x8x8; conv 3x3 w }")
    >>> meta = metadata(net, sources={}, batch=None, weights=RANDOM_WEIGHTS)
    >>> meta["rnetc.network"], meta["rnetc.parameters"], meta["rnetc.input_shape"]
    ('n', '{"w": 4}', '3x8x8')
    """
    from resnet_dsl.version import __version__

    out = {
        "rnetc.version": __version__,
        "rnetc.network": net.name,
        "rnetc.spec_file": net.file,
        "rnetc.parameters": json.dumps(dict(net.arguments), sort_keys=True),
        "rnetc.input_shape": "x".join(map(str, net.input_shape or ())),
        "rnetc.batch": "dynamic" if batch is None else str(batch),
        "rnetc.weights": weights,
    }
    files = list(sources.items())
    if files:
        out["rnetc.spec"] = files[0][1]
    if len(files) > 1:
        out["rnetc.imports"] = json.dumps(dict(files[1:]))
    return out
