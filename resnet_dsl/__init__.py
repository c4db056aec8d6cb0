"""rnetc: a declarative architecture compiler for residual networks.

    >>> import resnet_dsl
    >>> net = resnet_dsl.load("specs/cifar50.rnet", k=2)              # doctest: +SKIP
    >>> net.totals.params, net.output_shape                          # doctest: +SKIP
    (3008730, (10,))
    >>> print(resnet_dsl.summary(net))                               # doctest: +SKIP
    >>> model = resnet_dsl.build("specs/cifar50.rnet", k=2)           # doctest: +SKIP
    >>> fast = resnet_dsl.inference(model)                            # doctest: +SKIP

The front end (`load`, `summary`) needs no torch; backends import theirs when used
(`build`, the PyTorch model, and `inference`, its BN-folded inference build, import
torch when called).
"""

from __future__ import annotations

from resnet_dsl.version import __version__  # noqa: E402

from resnet_dsl.api import build, inference, load, summary  # noqa: E402
from resnet_dsl.errors import RnetError  # noqa: E402
from resnet_dsl.limits import Limits  # noqa: E402

__all__ = ["Limits", "RnetError", "__version__", "build", "inference", "load", "summary"]
