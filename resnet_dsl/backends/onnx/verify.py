"""Proving an exported file: onnx's full checker, then onnxruntime against PyTorch.

`check_file` reads the file from disk (the bytes a user gets, not the proto in memory),
runs `onnx.checker.check_model(path, full_check=True)` (structure, types and shape
inference), then runs it in onnxruntime (CPU) on seeded random inputs at each batch size
and compares with the PyTorch model in eval mode on the same inputs. The verdict is
numpy's `allclose` rule: |ort - torch| <= atol + rtol * |torch| everywhere.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from resnet_dsl.backends.onnx.report import BatchCheck, CheckReport

RTOL = 1e-3
ATOL = 1e-4


def check_file(path: str | os.PathLike, model: torch.nn.Module, input_shape: tuple[int, ...],
               batches: tuple[int, ...], *, rtol: float = RTOL, atol: float = ATOL,
               seed: int = 0) -> CheckReport:
    """Check the ONNX file at `path` against `model` (eval mode, CPU, float32).

    Never raises for a failed check: the report says what failed (`passed`, `problem`).

    >>> import resnet_dsl, tempfile, pathlib, onnx
    >>> from resnet_dsl.backends.onnx.trace import trace
    >>> m = resnet_dsl.build("network n { input 3x8x8; conv 3x3 4; bn; relu }").eval()
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "n.onnx"
    >>> onnx.save_model(trace(m, (3, 8, 8), batch=None, opset=None, input_name="x",
    ...                       output_name="y"), path)
    >>> check_file(path, m, (3, 8, 8), (1, 3)).passed
    True
    """
    import onnx
    import onnxruntime as ort

    path = str(path)
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as exc:  # ValidationError, or shape inference's InferenceError
        return CheckReport(False, rtol, atol, (), f"onnx.checker: {_first_line(exc)}")
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no warnings about unused initializers
        # Runs alternate with PyTorch's: threads spinning after a run would slow PyTorch's.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        return CheckReport(False, rtol, atol, (), f"onnxruntime cannot load it: {_first_line(exc)}")
    input_name = session.get_inputs()[0].name
    generator = torch.Generator().manual_seed(seed)
    results = []
    for batch in batches:
        x = torch.randn(batch, *input_shape, generator=generator)
        with torch.inference_mode():
            want = model(x).numpy().astype(np.float64)
        try:
            got = session.run(None, {input_name: x.numpy()})[0].astype(np.float64)
        except Exception as exc:
            return CheckReport(False, rtol, atol, tuple(results),
                               f"onnxruntime fails at batch {batch}: {_first_line(exc)}")
        if got.shape != want.shape:
            return CheckReport(False, rtol, atol, tuple(results),
                               f"at batch {batch} onnxruntime gives shape {got.shape}, "
                               f"PyTorch {want.shape}")
        diff = np.abs(got - want)
        results.append(BatchCheck(
            batch=batch,
            max_abs=float(diff.max(initial=0.0)),
            max_rel=float((diff / np.maximum(np.abs(want), np.finfo(np.float32).tiny)).max(initial=0.0)),
            within=bool(np.all(diff <= atol + rtol * np.abs(want))),
            used=float((diff / (atol + rtol * np.abs(want))).max(initial=0.0)),
            beyond=int((diff > atol + rtol * np.abs(want)).sum()),
            values=int(diff.size),
        ))
    passed = all(r.within for r in results)
    problem = None if passed else (f"onnxruntime's output differs from PyTorch's beyond rtol "
                                   f"{rtol:g} / atol {atol:g}")
    return CheckReport(passed, rtol, atol, tuple(results), problem)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
