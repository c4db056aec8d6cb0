"""The Python API: load a spec to a checked IR, summarise it, build its PyTorch model,
make its BN-folded inference build, export it to ONNX.

`build` and `inference` import torch when they are called, `export_spec` torch and onnx;
nothing else here does. The backends never import this module or the compiler: they take a checked IR.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from resnet_dsl.compiler import compile_network
from resnet_dsl.ir.graph import Network
from resnet_dsl.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    import torch

    from resnet_dsl.backends.onnx import ExportReport

Scalar = bool | int | float


def load(spec: str | os.PathLike, *, network: str | None = None,
         input_shape: tuple[int, int, int] | None = None, limits: Limits = DEFAULT_LIMITS,
         params: dict[str, Scalar] | None = None, **kwparams: Scalar) -> Network:
    """Compile a spec (a path, or the source text itself) to a checked, counted IR.

    Network parameters are keyword arguments (`load("specs/cifar50.rnet", k=2)`); a
    parameter whose name clashes with an option here goes in `params={...}`. Raises
    `resnet_dsl.RnetError` listing every problem in the spec.

    >>> load('network tiny(w = 4) { input 3x8x8; conv 3x3 w }', w=8).output_shape
    (8, 8, 8)
    """
    merged = {**(params or {}), **kwparams}
    return compile_network(spec, network=network, params=merged, input_shape=input_shape,
                           limits=limits)


def summary(net: Network, depth: int = 2) -> str:
    """The `rnetc summary` table of a loaded network (depth 1: stages, 2: blocks, 3: layers)."""
    from resnet_dsl.analysis.summary import format_summary

    return format_summary(net, depth)


def build(spec: str | os.PathLike, *, network: str | None = None,
          input_shape: tuple[int, int, int] | None = None, limits: Limits = DEFAULT_LIMITS,
          device: str | torch.device | None = None, dtype: torch.dtype | None = None,
          zero_init_residual: bool = False, params: dict[str, Scalar] | None = None,
          **kwparams: Scalar) -> torch.nn.Module:
    """Compile a spec (a path, or the source text) and build it as a torch.nn.Module.

    Spec parameters are passed as to `load` (`k=2`, or `params={"device": 3}` for a name
    this function uses itself). The state-dict names are the spec's (torchvision's for
    the torchvision-family specs); weights are initialised like torchvision's, and
    `zero_init_residual=True` zeroes the last BN of each residual branch.
    `device="meta"` builds without allocating; `device=None` is torch's default device.
    Raises `resnet_dsl.RnetError` for a spec with errors. See docs/pytorch.md.

    >>> model = build("specs/cifar50.rnet", k=2, device="meta")
    >>> sum(p.numel() for p in model.parameters())
    3008730
    """
    net = load(spec, network=network, input_shape=input_shape, limits=limits, params=params,
               **kwparams)
    from resnet_dsl.backends.torch import build_module

    return build_module(net, device=device, dtype=dtype, zero_init_residual=zero_init_residual)


def inference(model: torch.nn.Module) -> torch.nn.Module:
    """The inference build of a model `build` made (weights loaded): an eval-only copy in
    which each BatchNorm that directly follows a conv is folded into that conv and dropout
    and drop-path are gone; `model` itself is not changed. State-dict names stay where the
    weights still map (`layer1.0.conv1.weight`, now with a `layer1.0.conv1.bias`); the
    folded BNs' entries are gone. Raises `resnet_dsl.RnetError` (E702) for a module rnetc
    did not build. See docs/pytorch.md, "Inference build".

    >>> model = build("specs/cifar_resnet20.rnet")
    >>> fast = inference(model)
    >>> sum(p.numel() for p in fast.parameters()), sum(p.numel() for p in model.parameters())
    (269034, 269722)
    """
    from resnet_dsl.backends.torch.fold import inference as inference_build

    return inference_build(model)


def export_spec(spec: str | os.PathLike, path: str | os.PathLike, *,
                network: str | None = None, params: dict[str, Scalar] | None = None,
                input_shape: tuple[int, int, int] | None = None,
                weights: str | os.PathLike | None = None, opset: int | None = None,
                batch: int | str = "dynamic", check: bool = True, inference: bool = False,
                limits: Limits = DEFAULT_LIMITS) -> ExportReport:
    """Compile a spec (a path, or its text) and export it to ONNX: `load`, then
    `resnet_dsl.backends.onnx.export_onnx` (see docs/onnx.md), in one call;
    `inference=True` traces the model's inference build (the same graph).

    >>> import tempfile, pathlib
    >>> report = export_spec("specs/cifar_resnet.rnet", pathlib.Path(tempfile.mkdtemp()) / "r.onnx",
    ...                      params={"depth": 8}, batch=4)
    >>> report.batch, [b.batch for b in report.check.batches], report.metadata["rnetc.network"]
    (4, [4], 'cifar_resnet')
    """
    net = load(spec, network=network, input_shape=input_shape, limits=limits, params=params)
    from resnet_dsl.backends.onnx import export_onnx

    return export_onnx(net, path, weights=weights, opset=opset, batch=batch, check=check,
                       inference=inference)
