"""Weight initialisation of a built model, as torchvision initialises its ResNets.

Each module class's rule is in ops.py's `MODULES` table: convolutions Kaiming normal,
fan_out, for ReLU (He et al. 2015), a conv with a bias keeping PyTorch's default bias;
BN and GroupNorm weight 1, bias 0, running statistics reset; Linear PyTorch's default
(uniform in +-1/sqrt(fan_in)). `build.py` makes modules on the meta device and
allocates them empty, so this is the only initialisation a model gets: each weight is
drawn once, not first by the constructor and again here.
"""

from __future__ import annotations

from torch import nn

from resnet_dsl.backends.torch.modules import Block
from resnet_dsl.backends.torch.ops import MODULES

_RULES = {kind.cls: kind.init for kind in MODULES.values() if kind.init is not None}
_RULES[Block] = Block.reset_parameters  # its own parameters: layer scales


def init_weights(model: nn.Module, *, zero_init_residual: bool = False) -> list[str]:
    """Initialise every parameter and buffer of `model` in place; return the names of the
    BNs that `zero_init_residual` zeroed.

    >>> import resnet_dsl
    >>> model = resnet_dsl.build("specs/cifar_resnet20.rnet")
    >>> init_weights(model, zero_init_residual=True)[:2]
    ['layer1.0.bn2', 'layer1.1.bn2']
    """
    for module in model.modules():
        rule = _RULES.get(type(module))
        if rule is not None:
            rule(module)
        elif next(module.parameters(recurse=False), None) is not None or \
                next(module.buffers(recurse=False), None) is not None:
            raise TypeError(f"init_weights does not know how to initialise {type(module).__name__}")
    zeroed = []
    if zero_init_residual:
        # Zero the last BN of each residual branch (Goyal et al. 2017, "Accurate, Large
        # Minibatch SGD", section 5.1): each block then starts as its shortcut, the
        # network as a shallow one, which makes large-batch training stable early on and
        # gains ~0.2-0.3% top-1 on ImageNet (torchvision's zero_init_residual). Blocks
        # whose branch ends in a conv (pre-activation blocks) have no such BN.
        for name, module in model.named_modules():
            if isinstance(module, Block) and module.last_bn is not None:
                nn.init.zeros_(module.last_bn.weight)
                zeroed.append(f"{name}.{module._last_bn}")
    return zeroed
