"""The graphviz backend: architecture diagrams of a checked IR (`rnetc draw`).

The pipeline is `layout.plan` (the IR grouped into boxes, clusters and edges; plain
Python) -> `emit.to_digraph` (a `graphviz.Digraph`) -> `render.write_diagram` (DOT, or
SVG/PNG/PDF through graphviz's `dot` binary, written atomically). The `graphviz` Python
package is imported only inside `to_digraph`; nothing here imports torch.
"""

from resnet_dsl.backends.graphviz.emit import to_digraph
from resnet_dsl.backends.graphviz.errors import DotNotFound, DrawError, PackageMissing, RenderFailed
from resnet_dsl.backends.graphviz.render import FORMATS, format_for, write_diagram

__all__ = ["FORMATS", "DotNotFound", "DrawError", "PackageMissing", "RenderFailed",
           "format_for", "to_digraph", "write_diagram"]
