"""An eval-mode nn.Module -> an in-memory ONNX model, through torch.onnx's dynamo exporter.

Why this exporter (`torch.onnx.export(..., dynamo=True)`, torch's default since 2.9),
not the TorchScript one (`dynamo=False`, deprecated): measured on torch 2.14.1
(benchmarks/onnx.py, docs/onnx.md), it gives the minimal graph by itself (resnet50:
53 Conv, 49 Relu, 16 Add, 1 MaxPool, 1 ReduceMean, 1 Reshape, 1 Gemm; BatchNorm folded
by its onnxscript optimizer), where the TorchScript exporter leaves 47 Identity nodes,
and for an option-A shortcut with a dynamic batch a whole shape computation. The
TorchScript exporter is ~4x faster (resnet50: 1.2 s against 5.5 s); an export runs
once, the graph is what a deployment lives with.

Dynamic batch: the example input has batch 2 and the batch dimension is a
`torch.export.Dim`, so nothing specialises on its value (a batch-1 example invites
torch.export's 0/1 specialisation, the "batch-1 trace freezes the size" bug). The
model proto is taken in memory: the exporter's own `save` would move large weights to
a second `.onnx.data` file, and rnetc decides that itself (export.py).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import onnx
import torch

from resnet_dsl.errors import error

BATCH_DIM = "batch"
TRACE_BATCH = 2  # the example's batch when the batch is dynamic: not 0 or 1 (see above)


def trace(model: torch.nn.Module, input_shape: tuple[int, ...], *, batch: int | None,
          opset: int | None, input_name: str, output_name: str) -> onnx.ModelProto:
    """Export `model` (eval mode, CPU, float32) for inputs [batch, *input_shape].

    `batch=None` makes the batch dimension dynamic (named "batch" in the file);
    `opset=None` is the exporter's default. E901 if the exporter fails.

    >>> import resnet_dsl
    >>> m = resnet_dsl.build("network n { input 3x8x8; conv 3x3 4; bn; relu }").eval()
    >>> proto = trace(m, (3, 8, 8), batch=None, opset=None, input_name="images",
    ...               output_name="out")
    >>> [n.op_type for n in proto.graph.node]
    ['Conv', 'Relu']
    """
    # Its values do not matter; its own generator leaves the caller's random state alone.
    example = torch.randn(batch or TRACE_BATCH, *input_shape,
                          generator=torch.Generator().manual_seed(0))
    dynamic = ({0: torch.export.Dim(BATCH_DIM)},) if batch is None else None
    # The exporter narrates its steps on stdout and warns about internals; rnetc reports
    # the outcome itself, and a failure carries the exporter's own message.
    chatter = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), dynamo=True, input_names=[input_name],
                output_names=[output_name], dynamic_shapes=dynamic, opset_version=opset,
                optimize=True, verbose=False, external_data=False)
    except Exception as exc:  # the exporter raises its own and torch.export's error types
        text = str(exc).strip().splitlines()
        raise error("E901", f"torch.onnx could not export the model ({type(exc).__name__}: "
                            f"{text[0] if text else 'no message'})",
                    help="leave out --opset to use the exporter's default; if it still fails, "
                         "please report the spec") from None
    proto = program.model_proto
    written = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset is not None and written != opset:  # it falls back quietly where it cannot convert
        raise error("E901", f"torch.onnx wrote opset {written}, not the opset {opset} asked for",
                    help="leave out --opset to use the exporter's default")
    return proto
