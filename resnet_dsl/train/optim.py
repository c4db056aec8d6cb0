"""The optimiser of the recipe, its weight-decay groups, and the EMA of the weights.

SGD with momentum (optionally Nesterov). Weight decay can spare BatchNorm's scale and
shift and every bias (--norm-weight-decay 0 --bias-weight-decay 0, torchvision's
reference flags): decaying them only shrinks what BN re-normalises, which recipes since
Goyal et al. 2017 leave out. On CUDA the fused SGD kernel is used: one launch for all
parameters, and with fp16 it reads GradScaler's inf flag on the device instead of
synchronising with the host every step.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from resnet_dsl.train.config import TrainConfig

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def param_groups(model: nn.Module, wd: float, norm_wd: float | None = None,
                 bias_wd: float | None = None, head: list[nn.Parameter] | None = None,
                 head_lr_scale: float = 1.0) -> list[dict]:
    """Parameters split by the weight decay they get (norm layers, biases, the rest) and,
    given `head`, by whether they are the head's: its groups carry `lr_scale`, the factor
    `set_lr` applies to the schedule's rate (--head-lr / --lr). Parameters that do not
    require a gradient (frozen) are left out: they get no optimiser state.

    >>> m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(2, 2))
    >>> [(len(g["params"]), g["weight_decay"]) for g in param_groups(m, 1e-4, 0.0, 0.0)]
    [(2, 0.0001), (2, 0.0), (2, 0.0)]
    >>> [(len(g["params"]), g.get("lr_scale")) for g in param_groups(m, 1e-4, head=[m[2].weight],
    ...                                                                head_lr_scale=10.0)]
    [(5, None), (1, 10.0)]
    """
    head_ids = {id(p) for p in head or ()}
    groups: dict[tuple[str, bool], list] = {(k, h): [] for h in (False, True)
                                            for k in ("decay", "norm", "bias")}
    seen: set[int] = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            in_head = id(p) in head_ids
            if isinstance(module, _NORMS) and norm_wd is not None:
                groups["norm", in_head].append(p)
            elif name == "bias" and bias_wd is not None:
                groups["bias", in_head].append(p)
            else:
                groups["decay", in_head].append(p)
    decay = {"decay": wd, "norm": norm_wd, "bias": bias_wd}
    return [{"params": ps, "weight_decay": decay[k], **({"lr_scale": head_lr_scale} if h else {})}
            for (k, h), ps in groups.items() if ps]


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device,
                   head: list[nn.Parameter] | None = None) -> torch.optim.SGD:
    """SGD over the parameters that train; with --head-lr, `head` (the head's parameters)
    gets groups of its own whose rate is the schedule's times --head-lr / --lr."""
    if config.head_lr is None:
        head = None
    groups = param_groups(model, config.wd, config.norm_weight_decay, config.bias_weight_decay,
                          head=head, head_lr_scale=(config.head_lr or config.lr) / config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov and config.momentum > 0,
                           fused=True if device.type == "cuda" else None)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group's rate: `lr`, times the group's `lr_scale` (the head's, with --head-lr)."""
    for group in optimizer.param_groups:
        scale = group.get("lr_scale")
        group["lr"] = lr if scale is None else lr * scale


class ModelEma:
    """An exponential moving average of a model's parameters and buffers.

    Updated in place with one fused lerp per dtype and device, no host synchronisation
    (torch's AveragedModel checks a device counter on the host every step). Integer
    buffers (BatchNorm's batch counter) are copied.

    >>> m = nn.Linear(1, 1, bias=False); _ = m.weight.data.fill_(0.0)
    >>> ema = ModelEma(m, decay=0.5); _ = m.weight.data.fill_(1.0); ema.update(m)
    >>> ema.module.weight.item()
    0.5
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self._pairs = None

    def _tensors(self, model: nn.Module):
        if self._pairs is None:
            ours = [*self.module.parameters(), *self.module.buffers()]
            theirs = [*model.parameters(), *model.buffers()]
            floats = [(a, b) for a, b in zip(ours, theirs) if a.is_floating_point()]
            ints = [(a, b) for a, b in zip(ours, theirs) if not a.is_floating_point()]
            self._pairs = ([a for a, _ in floats], [b.detach() for _, b in floats], ints)
        return self._pairs

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ours, theirs, ints = self._tensors(model)
        torch._foreach_lerp_(ours, theirs, 1.0 - self.decay)
        for a, b in ints:
            a.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
