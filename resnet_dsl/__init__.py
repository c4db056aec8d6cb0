"""rnetc: a declarative architecture compiler for residual networks.

    >>> import resnet_dsl
    >>> net = resnet_dsl.load("specs/cifar_resnet20.rnet")        # doctest: +SKIP
    >>> net.totals.params                                           # doctest: +SKIP
    269722

The front end (`load`, `summary`) needs no torch; `build` imports it when called.
"""

from __future__ import annotations

__version__ = "0.1.0"
