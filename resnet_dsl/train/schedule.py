"""Learning-rate schedules as pure functions of the global step.

A schedule holds no state beyond its parameters: the loop sets each step's rate from
the step count, so resuming needs only the step (saved in every checkpoint) and the
rate never drifts from what the formula says.

    multistep  lr x gamma at each milestone (default: half and three quarters of the run,
               the paper's 32k and 48k of 64k iterations)
    cosine     half a cosine from lr down to --min-lr
    paper      multistep at exactly 32k and 48k iterations, stopping at 64k (He et al. 2015)

Any of them may start with a linear warmup (--warmup-epochs) from lr/W up to lr.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from resnet_dsl.train.config import PAPER_MILESTONES, TrainConfig


@dataclass(frozen=True)
class Schedule:
    """lr(step) for steps 0 .. total_steps - 1.

    >>> s = Schedule("multistep", 0.1, total_steps=100, milestones=(50, 75))
    >>> [round(s.lr(i), 5) for i in (0, 49, 50, 75, 99)]
    [0.1, 0.1, 0.01, 0.001, 0.001]
    >>> c = Schedule("cosine", 1.0, total_steps=10, warmup_steps=2)
    >>> [round(c.lr(i), 3) for i in (0, 1, 2, 6, 9)]
    [0.5, 1.0, 1.0, 0.5, 0.038]
    """

    kind: str
    base_lr: float
    total_steps: int
    warmup_steps: int = 0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    min_lr: float = 0.0

    def lr(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            t = min(1.0, (step - self.warmup_steps) / span)
            return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))
        return self.base_lr * self.gamma ** sum(step >= m for m in self.milestones)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["milestones"] = list(self.milestones)
        return out


def make_schedule(config: TrainConfig, steps_per_epoch: int, total_steps: int) -> Schedule:
    """The schedule a resolved config asks for (epochs in the config become steps)."""
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "cosine":
        return Schedule("cosine", config.lr, total_steps, warmup, min_lr=config.min_lr)
    if config.schedule == "paper":
        return Schedule("multistep", config.lr, total_steps, warmup, PAPER_MILESTONES, config.lr_gamma)
    epochs = config.lr_steps if config.lr_steps is not None else \
        [0.5 * total_steps / steps_per_epoch, 0.75 * total_steps / steps_per_epoch]
    milestones = tuple(sorted(round(e * steps_per_epoch) for e in epochs))
    return Schedule("multistep", config.lr, total_steps, warmup, milestones, config.lr_gamma)
