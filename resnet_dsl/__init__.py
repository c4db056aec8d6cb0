"""rnetc: a declarative architecture compiler for residual networks.

    >>> import resnet_dsl
    >>> model = resnet_dsl.build("specs/cifar_resnet20.rnet")      # doctest: +SKIP
    >>> sum(p.numel() for p in model.parameters())                  # doctest: +SKIP
    269722

The front end (`resnet_dsl.compiler.compile_network`, `rnetc check`) needs no torch;
`build` imports it when called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__version__ = "0.1.0"


def build(spec: str | os.PathLike, *, network: str | None = None,
          input_shape: tuple[int, int, int] | None = None,
          device: str | torch.device | None = None, dtype: torch.dtype | None = None,
          zero_init_residual: bool = False,
          params: dict[str, bool | int | float] | None = None,
          **more_params: bool | int | float) -> torch.nn.Module:
    """Compile a spec (a path, or the spec's text) and build it as a torch.nn.Module.

    Spec parameters are keyword arguments (`k=2`), or a `params` dict for those whose
    names are taken by this function's own arguments (`params={"device": 3}`). The
    state-dict names are the spec's (torchvision's for the torchvision-family specs);
    weights are initialised like torchvision's, and `zero_init_residual=True` zeroes the
    last BN of each residual branch. `device="meta"` builds without allocating.
    Raises `RnetError` for a spec with errors (`.render()` shows them).

    >>> model = build("specs/cifar50.rnet", k=2, device="meta")
    >>> sum(p.numel() for p in model.parameters())
    3008730
    """
    from resnet_dsl.compiler import compile_network

    values = dict(params or {})
    twice = sorted(set(values) & set(more_params))
    if twice:
        raise TypeError(f"spec parameter(s) given both in params= and as keywords: "
                        f"{', '.join(twice)}")
    values.update(more_params)
    net = compile_network(spec, network=network, params=values, input_shape=input_shape)

    from resnet_dsl.backends.torch import build_module

    return build_module(net, device=device, dtype=dtype, zero_init_residual=zero_init_residual)
