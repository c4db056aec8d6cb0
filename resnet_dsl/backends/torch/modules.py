"""The modules a compiled spec is made of, beyond torch.nn's own layers.

`RnetModel` is the network: its layers and stages run one after the other, exactly an
`nn.Sequential`. A stage is an `nn.Sequential` of blocks; a block that is a plain chain
is an `nn.Sequential` too. `Block` runs any other scope of the graph (a residual block)
as the plan's steps; its layers are its direct children under their IR names (`conv1`,
`bn1`, `downsample`), so state-dict keys read `layer1.0.conv1.weight` as in torchvision.
`ZeroPad` is the option-A shortcut. Which torch module each IR op becomes is ops.py's
table.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn


class RnetModel(nn.Sequential):
    """A compiled spec: its top-level layers and stages, in order.

    Slicing works as for nn.Sequential (`model[:-1]` drops the classifier).
    """

    network_name: str = ""                 # the spec's network, e.g. "resnet50"
    input_shape: tuple[int, ...] = ()      # (C, H, W) the spec was checked for


class Block(nn.Module):
    """A scope of the graph run as its steps (a residual block, today), as torch.fx's
    interpreter runs a graph: each step is `var = call(args...)`, where a call is a child
    module or a builtin (`a + b`, `a += b`, `a * b`, `torch.cat`) and an argument is a
    variable or a nested call. The steps come from the plan (plan.py) and are fixed when
    the module is built, so `torch.compile(fullgraph=True)` and `torch.export` see
    straight-line code; a variable that is assigned again frees its old tensor, as in
    hand-written code. The children are registered in IR order, so the state dict follows
    the spec (`layer1.0.conv1.weight`, `layer1.0.downsample.0.weight`).
    """

    def __init__(self, layers: list[tuple[str, nn.Module]], *, steps: tuple, input: str,
                 output: str, last_bn: str | None, kind: str, reads_fork: bool,
                 scales: tuple[tuple[str, int, float], ...] = (), factory: dict | None = None
                 ) -> None:
        super().__init__()
        for name, module in layers:
            if isinstance(module, _ScaleSlot):
                self.register_parameter(name, nn.Parameter(torch.empty(module.channels, **(factory or {}))))
            else:
                self.add_module(name, module)
        self._scales = {name: init for name, _, init in scales}  # layer scales: own parameters
        self._steps = steps      # ((var, call), ...); call = (how, target, args)
        self._input = input
        self._output = output
        self._last_bn = last_bn
        self._kind = kind
        self._reads_fork = reads_fork

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self._input: x}
        for var, call in self._steps:
            env[var] = self._call(call, env)
        return env[self._output]

    def _call(self, call: tuple, env: dict[str, torch.Tensor]) -> torch.Tensor:
        how, target, args = call
        values = [env[a] if isinstance(a, str) else self._call(a, env) for a in args]
        if how == MODULE:
            return self._modules[target](*values)
        if how == SUBMODULE:  # (scope, ..., layer): a layer of nn.ModuleDict children
            module = self._modules[target[0]]
            for key in target[1:]:
                module = module[key]
            return module(*values)
        if how == SCALE:  # a layer scale of a feature map: x * gamma, the block's parameter
            return values[0] * getattr(self, target).view(-1, 1, 1)  # (getattr: fx sees it)
        if how == SCALE_FLAT:
            return values[0] * getattr(self, target)
        return target(*values)  # a builtin: operator.add, operator.iadd, torch.cat, ...

    def reset_parameters(self) -> None:
        """The layer scales' initial values (the children are initialised as modules)."""
        with torch.no_grad():
            for name, init in self._scales.items():
                self._parameters[name].fill_(init)

    @property
    def last_bn(self) -> nn.Module | None:
        """The BN that ends the residual branch (zeroed by zero_init_residual), if any."""
        return self._modules[self._last_bn] if self._last_bn else None

    def extra_repr(self) -> str:
        source = ", from the fork" if self._reads_fork else ""
        return f"shortcut={self._kind}{source}"


MODULE = "module"
"""The `how` of a step that calls a child module (any other `how` is a builtin)."""

def _source(cls: type) -> str:
    """An rnetc module's class as emitted files define it: its own source, where the
    emitted one is the same class (the older ones keep hand-written variants)."""
    return inspect.getsource(cls).rstrip()


SUBMODULE = "submodule"
"""The `how` of a step that calls a layer of a child nn.ModuleDict: target (scope, layer)."""

SCALE, SCALE_FLAT = "scale", "scale_flat"
"""The `how` of a step that multiplies a feature map (a flat value) by one of the block's
layer-scale parameters."""


class _ScaleSlot(nn.Module):
    """A layer scale while its block is built: the block registers a parameter in its
    place (build.py), so the state dict says `blocks.0.gamma`, as timm's ConvNeXt."""

    def __init__(self, channels: int, init: float = 1e-6) -> None:
        super().__init__()
        self.channels, self.init = channels, init


class StdConv2d(nn.Conv2d):
    """Weight-standardised convolution (Qiao et al. 2019), as timm's StdConv2d: each output
    filter's weights are normalised to zero mean and unit variance (`eps` inside the
    root) before the convolution. BiT (Kolesnikov et al. 2020) uses eps 1e-8."""

    def __init__(self, *args, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(self.weight, dim=(1, 2, 3), unbiased=False, keepdim=True)
        return self._conv_forward(x, (self.weight - mean) * torch.rsqrt(var + self.eps), self.bias)


STDCONV_SOURCE = _source(StdConv2d)
"""StdConv2d as emitted files define it."""


class GroupSoftmax(nn.Module):
    """Softmax across `groups` branches stacked along the channels (SK, ResNeSt)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.groups, -1)).softmax(1).flatten(1, 2)


class GroupSum(nn.Module):
    """The sum of `groups` branches stacked along the channels (SK, ResNeSt)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.groups, -1)).sum(1)


GROUPS_SOURCE = _source(GroupSoftmax)

GROUPSUM_SOURCE = _source(GroupSum)
"""GroupSoftmax and GroupSum as emitted files define them."""


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an N x C x H x W tensor (timm's LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


LAYERNORM2D_SOURCE = _source(LayerNorm2d)
"""LayerNorm2d as emitted files define it."""

Residual = Block  # the name of rnetc 0.1's residual block module


class ZeroPad(nn.Module):
    """Option A shortcut (He et al. 2015): every `stride`-th pixel, then zero channels
    appended after the input's up to `out_channels`. No parameters."""

    def __init__(self, stride: int, out_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, out_channels={self.out_channels}"


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016), as timm's `drop_path`: in training, each
    sample is dropped with probability `p` and the kept ones scaled by 1/(1-p); in eval,
    the identity. No parameters."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


DROPPATH_SOURCE = '''\
class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016), as timm's `drop_path`: in training, each
    sample is dropped with probability `p` and the kept ones scaled by 1/(1-p); in eval,
    the identity. No parameters."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)'''
"""DropPath as emitted files define it."""


class BlurPool(nn.Module):
    """Anti-aliased downsampling (Zhang 2019), as timm's BlurPool2d: reflect padding, then
    a fixed binomial `size` x `size` filter per channel with `stride`. The filter is a
    buffer outside the state dict."""

    def __init__(self, channels: int, size: int = 3, stride: int = 2, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.channels, self.size, self.stride = channels, size, stride
        self.padding = [((stride - 1) + (size - 1)) // 2] * 4
        self.register_buffer("filt", torch.empty(channels, 1, size, size, device=device,
                                                 dtype=dtype), persistent=False)
        if self.filt.device.type != "meta":
            self.reset_parameters()

    def reset_parameters(self) -> None:
        coeffs = torch.tensor([math.comb(self.size - 1, i) for i in range(self.size)],
                              dtype=torch.float64) / 2 ** (self.size - 1)
        with torch.no_grad():
            self.filt.copy_((coeffs[:, None] * coeffs[None, :]).expand_as(self.filt))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.padding, mode="reflect")
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)


BLURPOOL_SOURCE = '''\
class BlurPool(nn.Module):
    """Anti-aliased downsampling (Zhang 2019), as timm's BlurPool2d: reflect padding, then
    a fixed binomial `size` x `size` filter per channel with `stride`. The filter is a
    buffer outside the state dict."""

    def __init__(self, channels: int, size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.channels, self.stride = channels, stride
        self.padding = [((stride - 1) + (size - 1)) // 2] * 4
        coeffs = torch.tensor([math.comb(size - 1, i) for i in range(size)],
                              dtype=torch.float64) / 2 ** (size - 1)
        filt = (coeffs[:, None] * coeffs[None, :]).expand(channels, 1, size, size)
        self.register_buffer("filt", filt.to(torch.get_default_dtype()).contiguous(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.padding, mode="reflect")
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)'''
"""BlurPool as emitted files define it (they also `import math`)."""


class ChannelConv(nn.Conv1d):
    """ECA's gate convolution (Wang et al. 2020): a 1-D convolution across the channels of
    an N x C x 1 x 1 tensor, `kernel` wide, no bias (timm's EcaModule.conv)."""

    def __init__(self, kernel: int, device=None, dtype=None) -> None:
        super().__init__(1, 1, kernel, padding=(kernel - 1) // 2, bias=False,
                         device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        return super().forward(x.view(n, 1, c)).view(n, c, 1, 1)


CHANNELCONV_SOURCE = '''\
class ChannelConv(nn.Conv1d):
    """ECA's gate convolution (Wang et al. 2020): a 1-D convolution across the channels of
    an N x C x 1 x 1 tensor, `kernel` wide, no bias (timm's EcaModule.conv)."""

    def __init__(self, kernel: int, device=None, dtype=None) -> None:
        super().__init__(1, 1, kernel, padding=(kernel - 1) // 2, bias=False,
                         device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        return super().forward(x.view(n, 1, c)).view(n, c, 1, 1)'''
"""ChannelConv as emitted files define it."""


ZEROPAD_SOURCE = '''\
class ZeroPad(nn.Module):
    """Option A shortcut (He et al. 2015): every `stride`-th pixel, then zero channels
    appended after the input's up to `out_channels`. No parameters."""

    def __init__(self, stride: int, out_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))'''
"""ZeroPad as emitted files define it (emit.py), for they import nothing of rnetc."""


RESERVED_NAMES: frozenset[str] = frozenset(dir(nn.Sequential())) | frozenset({
    "_steps", "_input", "_output", "_call", "_last_bn", "_kind", "_reads_fork", "last_bn",
    "network_name", "input_shape",
    "zero_init_last_bn", "init_weights",   # methods of the emitted classes (emit.py)
})
"""Names a layer or stage cannot take: its parent module already has the attribute."""
