"""The ONNX backend: a checked IR becomes a minimal, checked .onnx file.

    export_onnx(net, path, ...)    a compiled network (export.py) -> ExportReport
    export_spec(spec, path, ...)   compile a spec, then export_onnx

ONNX export goes through PyTorch: the model is built by the torch backend
(`resnet_dsl.backends.torch.build_module`, its weights read by weights.py) and traced by
torch.onnx (trace.py). So this backend depends on the torch backend's public functions,
one way only: the torch backend never imports this one. The steps are small files:
weights.py (safe loading, fit check), trace.py (torch.onnx), minimize.py (graph
rewrites), metadata.py, verify.py (onnx.checker, onnxruntime vs PyTorch), report.py.

Importing this package imports neither torch nor onnx; `export_onnx` imports torch,
onnx and onnxscript when called, onnxruntime only when it checks the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resnet_dsl.backends.onnx.report import BatchCheck, CheckReport, ExportReport

if TYPE_CHECKING:
    from resnet_dsl.backends.onnx.export import export_onnx

__all__ = ["BatchCheck", "CheckReport", "ExportReport", "export_onnx"]


def __getattr__(name: str):
    if name == "export_onnx":
        from resnet_dsl.backends.onnx import export

        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
