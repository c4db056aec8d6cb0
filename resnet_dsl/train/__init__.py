"""Training a compiled network on real data: `rnetc train` and `rnetc compile --train`.

The pipeline, one file per stage:

    config.py        options, their checks, the YAML/JSON config file
    data/            sources (digits, cifar, folder, synthetic) and loaders (gpu_loader,
                     host_loader, sampler)
    augment.py       crop/flip/normalise, batched on the device
    schedule.py      learning-rate schedules (multistep, cosine, paper)
    optim.py         SGD, weight-decay groups, EMA of the weights
    loop.py          steps, evaluation, stopping on a signal
    checkpoint.py    atomic checkpoints, random state
    distributed.py   torchrun, DDP, SyncBatchNorm
    metrics.py, progress.py, plots.py   what the user watches
    run.py           `train()`: puts the stages together in order

The options (config.py) import no torch, so that `rnetc --help` and the front end stay
light; `train` and the rest import it when first used.

    >>> from resnet_dsl.train import TrainConfig, train                     # doctest: +SKIP
    >>> result = train(TrainConfig(epochs=4), net)                          # doctest: +SKIP
"""

from __future__ import annotations

from resnet_dsl.train.config import OptionError, TrainConfig

__all__ = ["OptionError", "TrainConfig", "TrainResult", "train"]


def __getattr__(name: str):
    if name in ("train", "TrainResult"):
        from resnet_dsl.train import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
