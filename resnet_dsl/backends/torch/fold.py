"""The inference build: a copy of an rnetc model with its BatchNorms folded into its convs.

`inference(model)` deep-copies a module that `build_module` made (weights loaded) and
rewrites the copy; the model it was given is not touched. Four rewrites, in order:

    standardise        a weight-standardised conv becomes a plain one with the
                       standardised weight (computed once, in float64)
    drop_passthrough   Dropout, DropPath and Identity compute nothing in eval mode: they
                       leave their parent (an nn.Sequential's child, or a Block's step)
    fold_batchnorm     a BatchNorm whose input is a conv's output that nothing else reads
                       becomes the conv's scale and bias: W' = W * s,
                       b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps) per
                       output channel (s and b' computed in float64)
    alias              a Block step left as `v = a` is removed, its readers read `a`

Folding is done on the modules, not on the plan: a module does not carry its IR, and
the plan's facts that folding needs (which value a BN reads, who else reads it) are in
the modules already, as an nn.Sequential's order and a Block's steps. A BN that does
not directly follow a conv stays: the pre-activation BN (after an addition, or reading a
block's input) cannot move into the conv after the ReLU that follows it. The copy is
an `InferenceModel`: eval mode, parameters without gradients, and `train()` refused
(E702). Its forward stays the same straight-line code (nn.Sequential, Block's steps), so
`torch.compile(fullgraph=True)` captures it as before. This module must not change the
model it is given, nor know about specs or the IR.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterator

import torch
from torch import nn

from resnet_dsl.backends.torch.modules import (
    MODULE, SUBMODULE, Block, DropPath, RnetModel, StdConv2d,
)
from resnet_dsl.errors import error

PASSTHROUGH = (nn.Dropout, DropPath, nn.Identity)
"""Modules that return their input in eval mode: an inference build drops them."""

_ALIAS = "alias"  # the `how` of a step `v = a` while the rewrites run (never in a result)


class InferenceModel(RnetModel):
    """An rnetc model's inference build (`resnet_dsl.inference`): BatchNorms folded into
    the convs before them, no dropout. Always in eval mode: `train()` is refused (E702),
    since the folded convs and the remaining BNs cannot train as the original model."""

    def train(self, mode: bool = True) -> InferenceModel:
        if mode:
            raise error("E702", "an inference build is eval-only: its BatchNorms are folded "
                                "into the convs and its dropouts removed, so it cannot train",
                        help="train the model resnet_dsl.build made, then call "
                             "resnet_dsl.inference(model) again")
        return super().train(False)


def standardise_weights(model: nn.Module) -> None:
    """Replace each weight-standardised conv (StdConv2d) in `model` by a plain Conv2d whose
    weight is the standardised one (computed in float64): the same function in eval and
    inference, without re-normalising the weights on every call (what an exported graph
    would otherwise compute). `model` is changed in place: call it on a copy."""
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if type(child) is not StdConv2d:
                continue
            w = child.weight.detach().double()
            var, mean = torch.var_mean(w, dim=(1, 2, 3), unbiased=False, keepdim=True)
            conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size,
                             child.stride, child.padding, child.dilation, child.groups,
                             child.bias is not None, device=w.device, dtype=child.weight.dtype)
            with torch.no_grad():
                conv.weight.copy_((w - mean) / torch.sqrt(var + child.eps))
                if child.bias is not None:
                    conv.bias.copy_(child.bias)
            conv.train(child.training)
            parent._modules[name] = conv


def inference(model: nn.Module) -> InferenceModel:
    """An eval-only copy of an rnetc model with each BatchNorm that directly follows a conv
    folded into it, and dropout and drop-path removed (`model` is left as it was).

    The state dict keeps its names where the weights still map: a folded conv's `weight`
    is rescaled and it gains a `bias`; the folded BN's entries are gone. E702 if `model`
    is not a module rnetc built. See docs/pytorch.md, "Inference build".

    >>> import resnet_dsl, torch
    >>> model = resnet_dsl.build("specs/cifar_resnet20.rnet").eval()
    >>> fast = inference(model)
    >>> [k for k in fast.state_dict()][:3]
    ['conv1.weight', 'conv1.bias', 'layer1.0.conv1.weight']
    >>> x = torch.randn(2, 3, 32, 32)
    >>> torch.allclose(fast(x), model(x), rtol=1e-4, atol=1e-5)
    True
    """
    if not isinstance(model, RnetModel):
        raise _not_rnetc(model)
    copied = copy.deepcopy(model)
    standardise_weights(copied)
    containers = [m for m in copied.modules() if isinstance(m, (nn.Sequential, Block))]
    for container in containers:
        if isinstance(container, Block):
            _rewrite_block(container)
        else:
            _rewrite_sequential(container)
    for container in containers:   # a conv that ends one child, a BN that starts the next
        if not isinstance(container, Block):
            _fold_across(container)
    result = InferenceModel(OrderedDict(copied._modules))
    result.network_name = model.network_name
    result.input_shape = model.input_shape
    result.requires_grad_(False)
    return result.eval()


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold eval-mode `bn`, which reads `conv`'s output, into `conv` (in place): the conv
    then computes bn(conv(x)) and has a bias. The per-channel scale and shift are computed
    in float64; the weight is scaled in its own dtype (one rounding per value)."""
    with torch.no_grad():
        dtype = conv.weight.dtype
        scale = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        shift = (bias - bn.running_mean.double()) * scale
        if bn.bias is not None:
            shift = shift + bn.bias.double()
        conv.weight.mul_(scale.to(dtype).reshape(-1, *([1] * (conv.weight.dim() - 1))))
        conv.bias = nn.Parameter(shift.to(dtype), requires_grad=False)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d
            and bn.running_mean is not None and bn.running_var is not None
            and bn.num_features == conv.out_channels)


# -- nn.Sequential: each child reads the one before it -----------------------------------

def _rewrite_sequential(seq: nn.Sequential) -> None:
    for name in [n for n, m in seq._modules.items() if isinstance(m, PASSTHROUGH)]:
        del seq._modules[name]
    children = list(seq._modules.items())
    for (_, conv), (name, bn) in zip(children, children[1:]):
        if _foldable(conv, bn) and name in seq._modules:
            fold_batchnorm(conv, bn)
            del seq._modules[name]


def _fold_across(seq: nn.Sequential) -> None:
    """Fold where one child ends in a conv and the next starts with a BN that alone reads
    it: a deep stem's last conv and the `bn1` after it, a stem conv and the first
    pre-activation block's BN (when its shortcut reads the fork, not the input)."""
    children = list(seq._modules.items())
    for (_, before), (name, after) in zip(children, children[1:]):
        conv, entry = _exit_conv(before), _entry_bn(after)
        if conv is None or entry is None or not _foldable(conv, entry[0]):
            continue
        bn, remove = entry
        fold_batchnorm(conv, bn)
        if remove is None:
            del seq._modules[name]
        else:
            remove()


def _exit_conv(module: nn.Module) -> nn.Conv2d | None:
    """The conv whose output is `module`'s output and read by nothing inside it."""
    if type(module) is nn.Conv2d:
        return module
    if isinstance(module, nn.Sequential) and module._modules:
        return _exit_conv(list(module._modules.values())[-1])
    if isinstance(module, Block) and module._steps:
        steps = list(module._steps)
        i = _producer(steps, len(steps), module._output)
        if i is None or _reads_of(steps, i, module._output) != 1:
            return None
        how, target, _ = steps[i][1]
        if how == MODULE and _module_uses(steps).get(target) == 1:
            return _exit_conv(module._modules[target])
    return None


def _entry_bn(module: nn.Module):
    """(the BN that alone reads `module`'s input, how to remove it from `module`), with
    None for the latter where `module` is the BN itself; None if there is none."""
    if type(module) is nn.BatchNorm2d:
        return module, None
    if isinstance(module, nn.Sequential) and module._modules:
        name, first = next(iter(module._modules.items()))
        inner = _entry_bn(first)
        if inner is None:
            return None
        bn, remove = inner
        return bn, remove or (lambda: module._modules.pop(name))
    if isinstance(module, Block) and module._input != module._output:
        steps = list(module._steps)
        readers = [j for j, (_, call) in enumerate(steps) if module._input in _reads(call)]
        if len(readers) != 1 or any(var == module._input for var, _ in steps):
            return None
        j = readers[0]
        var, (how, target, args) = steps[j]
        if how != MODULE or args != (module._input,) or _module_uses(steps).get(target) != 1:
            return None
        inner = _entry_bn(module._modules[target])
        if inner is None:
            return None
        bn, remove = inner

        def remove_step() -> None:
            if remove is not None:
                remove()
                return
            steps[j] = (var, (_ALIAS, target, args))
            left, module._output = _remove_aliases(steps, module._output, module._modules)
            if target not in _module_uses(left):
                del module._modules[target]
            if module._last_bn == target:
                module._last_bn = None
            module._steps = tuple(left)
        return bn, remove_step
    return None


# -- Block: its steps, `var = call(args...)` ---------------------------------------------

class _Flat(dict):
    """A block's modules by call target, the layers of its nn.ModuleDict children (called
    one by one: `conv2.bn0`) under dotted names; deleting or replacing one changes its
    parent container."""

    def __init__(self, block: Block) -> None:
        super().__init__()
        self.parents: dict[str, tuple[nn.Module, str]] = {}

        def add(prefix: str, container: nn.Module) -> None:
            for name, module in container._modules.items():
                key = f"{prefix}{name}"
                self.parents[key] = (container, name)
                dict.__setitem__(self, key, module)
                if isinstance(module, nn.ModuleDict):
                    add(f"{key}.", module)

        add("", block)

    def __setitem__(self, key: str, module: nn.Module) -> None:
        parent, name = self.parents[key]
        parent._modules[name] = module
        dict.__setitem__(self, key, module)

    def __delitem__(self, key: str) -> None:
        parent, name = self.parents[key]
        del parent._modules[name]
        dict.__delitem__(self, key)


def _flatten(call):
    """A SUBMODULE call as a MODULE call of its dotted name (and back: `_unflatten`)."""
    if isinstance(call, str):
        return call
    how, target, args = call
    args = tuple(_flatten(a) for a in args)
    return (MODULE, ".".join(target), args) if how == SUBMODULE else (how, target, args)


def _unflatten(call):
    if isinstance(call, str):
        return call
    how, target, args = call
    args = tuple(_unflatten(a) for a in args)
    if how == MODULE and "." in target:
        return (SUBMODULE, tuple(target.split(".")), args)
    return (how, target, args)


def _rewrite_block(block: Block) -> None:
    modules = _Flat(block)
    steps = [(var, _drop_passthrough(_flatten(call), modules, top=True))
             for var, call in block._steps]
    steps, output = _remove_aliases(steps, block._output, modules)
    uses = _module_uses(steps)
    folded = []
    for j, (var, call) in enumerate(steps):
        steps[j] = (var, _fold(call, j, steps, output, modules, uses, folded, top=True))
    steps, output = _remove_aliases(steps, output, modules)
    left = _module_uses(steps)
    for name in [n for n, m in modules.items()
                 if n not in left and (n in folded or isinstance(m, PASSTHROUGH))]:
        del modules[name]
    if block._last_bn in folded:
        block._last_bn = None
    block._steps = tuple((var, _unflatten(call)) for var, call in steps)
    block._output = output


def _drop_passthrough(call: tuple, modules, top: bool) -> tuple | str:
    """The call with its passthrough modules removed: a nested one becomes its argument,
    a step's own an alias (removed later)."""
    how, target, args = call
    args = tuple(a if isinstance(a, str) else _drop_passthrough(a, modules, top=False)
                 for a in args)
    if how == MODULE and isinstance(modules[target], PASSTHROUGH) and len(args) == 1:
        return (_ALIAS, target, args) if top else args[0]
    return (how, target, args)


def _fold(call, j: int, steps: list, output: str, modules, uses: dict, folded: list,
          top: bool):
    """The call with each BN that reads a conv's otherwise unread output folded away."""
    if isinstance(call, str):
        return call
    how, target, args = call
    args = tuple(_fold(a, j, steps, output, modules, uses, folded, top=False) for a in args)
    if how != MODULE or len(args) != 1 or uses.get(target) != 1:
        return (how, target, args)
    (source,) = args
    if isinstance(source, str):
        producer = _producer(steps, j, source)
        if producer is None:
            return (how, target, args)
        conv_call = steps[producer][1]
        if _reads_of(steps, producer, output) != 1:
            return (how, target, args)
    else:
        conv_call = source
    if not (isinstance(conv_call, tuple) and conv_call[0] == MODULE
            and uses.get(conv_call[1]) == 1 and _foldable(modules[conv_call[1]], modules[target])):
        return (how, target, args)
    fold_batchnorm(modules[conv_call[1]], modules[target])
    folded.append(target)
    if isinstance(source, str):
        return (_ALIAS, target, (source,)) if top else source
    return source


def _remove_aliases(steps: list, output: str, modules) -> tuple[list, str]:
    """Remove each step `v = a`, its readers reading `a`, where `a` holds the same value
    for all of them; an alias that cannot go (never, for rnetc's plans) stays as a call of
    an nn.Identity under the removed module's name."""
    steps = list(steps)
    j = 0
    while j < len(steps):
        var, call = steps[j]
        if not (isinstance(call, tuple) and call[0] == _ALIAS):
            j += 1
            continue
        source = call[2][0]
        if not isinstance(source, str):      # `v = conv(...)`: the nested call is the step
            steps[j] = (var, source)
            j += 1
            continue
        if var == source:
            del steps[j]
            continue
        renamed = _rename_reads(steps, j, var, source, output)
        if renamed is None:
            modules[call[1]] = nn.Identity()
            steps[j] = (var, (MODULE, call[1], (source,)))
            j += 1
            continue
        steps, output = renamed
        del steps[j]
    return steps, output


def _rename_reads(steps: list, j: int, var: str, source: str, output: str):
    """Steps (and output) with the reads of step j's value of `var` reading `source`
    instead; None if `source` is assigned again before the last of them."""
    new = list(steps)
    last = j
    for k in range(j + 1, len(steps)):
        k_var, k_call = steps[k]
        if var in _reads(k_call):
            new[k] = (k_var, _renamed(k_call, var, source))
            last = k
        if k_var == var:
            break
    else:
        if output == var:
            last = len(steps)
            output = source
    if any(steps[k][0] == source for k in range(j + 1, last)):
        return None
    return new, output


def _renamed(call, var: str, source: str):
    if isinstance(call, str):
        return source if call == var else call
    how, target, args = call
    return (how, target, tuple(_renamed(a, var, source) for a in args))


def _producer(steps: list, j: int, var: str) -> int | None:
    """The step whose value of `var` step j reads (None: the block's input)."""
    return next((i for i in range(j - 1, -1, -1) if steps[i][0] == var), None)


def _reads_of(steps: list, i: int, output: str) -> int:
    """How many times step i's value is read: by later calls, and as the block's output."""
    var = steps[i][0]
    count = 0
    for k_var, k_call in steps[i + 1:]:
        count += sum(1 for name in _reads(k_call) if name == var)
        if k_var == var:
            return count
    return count + (output == var)


def _reads(call) -> Iterator[str]:
    if isinstance(call, str):
        yield call
        return
    for a in call[2]:
        yield from _reads(a)


def _module_uses(steps: list) -> dict[str, int]:
    uses: dict[str, int] = {}

    def walk(call) -> None:
        if isinstance(call, str):
            return
        if call[0] in (MODULE, _ALIAS):
            uses[call[1]] = uses.get(call[1], 0) + 1
        for a in call[2]:
            walk(a)

    for _, call in steps:
        walk(call)
    return uses


def _not_rnetc(model) -> Exception:
    wrapped = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
    kind = type(model)
    what = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(wrapped, RnetModel):
        hint = ("pass the model inside: `model._orig_mod` for a torch.compile'd one, "
                "`model.module` under DistributedDataParallel")
    else:
        hint = ("build the model with resnet_dsl.build (or build_module), load its weights, "
                "then call resnet_dsl.inference on it")
    return error("E702", f"resnet_dsl.inference takes a model that rnetc built, not a `{what}`",
                 help=hint)
