"""The training options: one dataclass, its checks, and the YAML/JSON config file.

Every field is a command-line flag of the same name (`batch_size` is `--batch-size`) and
a key of a config file (`batch-size:` or `batch_size:`). Precedence, lowest first: the
defaults below, the data source's defaults (where a field is None: epochs, flips,
crop padding), the config file, the command line.
`OUTPUT_DIR/config.yaml` records the resolved options of a run and can be passed back
with --config. The defaults are the paper's recipe (He et al. 2015): SGD with momentum
0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at half and three quarters of
the run. This module imports no torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from resnet_dsl.errors import did_you_mean

SCHEDULES = ("multistep", "cosine", "paper")
LOADERS = ("auto", "device", "dataloader")
AMP_DTYPES = ("bfloat16", "float16")

# --schedule paper: lr 0.1, /10 at 32k and 48k iterations, stop at 64k, batch 128, wd 1e-4
# (the defaults below are these values).
PAPER_MILESTONES = (32_000, 48_000)
PAPER_STEPS = 64_000


class OptionError(ValueError):
    """A training option is impossible (the command line reports it as a usage error)."""


@dataclass
class TrainConfig:
    """Options of one training run (see `rnetc train --help`).

    >>> TrainConfig(epochs=2).check()
    >>> try:
    ...     TrainConfig(batch_size=0, lr=-1).check()
    ... except OptionError as exc:
    ...     print(exc)
    --batch-size must be a positive integer, got 0; --lr must be a positive number, got -1
    """

    # data
    data: str = "digits"
    data_dir: str | None = None
    subset: int | None = None
    synthetic_size: int = 10_000
    loader: str = "auto"
    workers: int | None = None
    hflip: bool | None = None
    crop_padding: int | None = None
    # recipe
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    wd: float = 1e-4
    norm_weight_decay: float | None = None
    bias_weight_decay: float | None = None
    schedule: str = "multistep"
    lr_steps: list[float] | None = None
    lr_gamma: float = 0.1
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    label_smoothing: float = 0.0
    model_ema: bool = False
    model_ema_decay: float = 0.999
    # fine-tuning (resnet_dsl/train/finetune.py)
    weights: str | None = None          # start from these weights (the head may differ)
    freeze: str | None = None           # `backbone`, or a layer/block/stage and all before it
    head_lr: float | None = None        # the head's peak learning rate (default: --lr)
    # speed
    device: str = "auto"
    amp: bool | None = None
    amp_dtype: str = "bfloat16"
    channels_last: bool | None = None
    compile: bool = False
    sync_bn: bool = False
    # reproducibility and output
    seed: int = 0
    deterministic: bool = False
    output_dir: str | None = None
    resume: str | None = None
    print_freq: int = 20
    tensorboard: bool | None = None

    def check(self) -> None:
        """Raise OptionError naming every option whose value is impossible."""
        problems = list(_problems(self))
        if problems:
            raise OptionError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def option(name: str) -> str:
    """The command-line spelling of a field: `batch_size` -> `--batch-size`."""
    return "--" + name.replace("_", "-")


def _problems(c: TrainConfig):
    def positive_int(name: str, value, allow_none: bool = True):
        if value is None and allow_none:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return f"{option(name)} must be a positive integer, got {value}"
        return None

    for name in ("epochs", "max_steps", "subset", "print_freq"):
        yield from filter(None, [positive_int(name, getattr(c, name))])
    yield from filter(None, [positive_int("batch_size", c.batch_size, False),
                             positive_int("synthetic_size", c.synthetic_size, False)])
    from resnet_dsl.train.data import SOURCES

    for name, value, choices in (("data", c.data, SOURCES), ("schedule", c.schedule, SCHEDULES),
                                 ("loader", c.loader, LOADERS), ("amp_dtype", c.amp_dtype, AMP_DTYPES)):
        if value not in choices:
            hint = did_you_mean(str(value), choices)
            yield (f"{option(name)} must be one of {', '.join(choices)}, got `{value}`"
                   + (f" ({hint})" if hint else ""))
    checks = (
        ("lr", c.lr is not None and math.isfinite(c.lr) and c.lr > 0, "a positive number"),
        ("momentum", 0 <= c.momentum < 1, "in [0, 1)"),
        ("wd", c.wd >= 0, "zero or positive"),
        ("norm_weight_decay", c.norm_weight_decay is None or c.norm_weight_decay >= 0, "zero or positive"),
        ("bias_weight_decay", c.bias_weight_decay is None or c.bias_weight_decay >= 0, "zero or positive"),
        ("lr_gamma", 0 < c.lr_gamma <= 1, "in (0, 1]"),
        ("warmup_epochs", c.warmup_epochs >= 0, "zero or positive"),
        ("min_lr", c.min_lr >= 0 and not (c.lr > 0 and c.min_lr >= c.lr), "in [0, --lr)"),
        ("label_smoothing", 0 <= c.label_smoothing < 1, "in [0, 1)"),
        ("model_ema_decay", 0 < c.model_ema_decay < 1, "in (0, 1)"),
        ("workers", c.workers is None or c.workers >= 0, "zero or positive"),
        ("crop_padding", c.crop_padding is None or c.crop_padding >= 0, "zero or positive"),
        ("seed", isinstance(c.seed, int) and 0 <= c.seed < 2**63, "an integer in [0, 2**63)"),
        ("head_lr", c.head_lr is None or (math.isfinite(c.head_lr) and c.head_lr > 0),
         "a positive number"),
    )
    for name, ok, what in checks:
        if not ok:
            yield f"{option(name)} must be {what}, got {getattr(c, name)}"
    if c.lr_steps is not None and any(not (s > 0) for s in c.lr_steps):
        yield f"--lr-steps must be positive epochs, got {c.lr_steps}"
    for name in ("weights", "freeze"):
        if getattr(c, name) is not None and not str(getattr(c, name)).strip():
            yield f"{option(name)} must not be empty"
    if c.schedule == "paper" and c.lr_steps is not None:
        yield "--schedule paper fixes the milestones (32k and 48k iterations); drop --lr-steps"


# -- config files ------------------------------------------------------------------------
def field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in fields(TrainConfig)}


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = field_types()[name]
    if value is None:
        if "None" in kind:
            return None
        raise OptionError(f"{where}: `{name}` cannot be null")
    if kind.startswith("bool"):
        if isinstance(value, bool):
            return value
    elif kind.startswith("int"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind.startswith("float"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind.startswith("str"):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif kind.startswith("list[float]"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [float(value)]
        if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                           for v in value):
            return [float(v) for v in value]
    raise OptionError(f"{where}: `{name}` must be {kind.split(' |')[0]}, got {value!r}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file of options; keys are option names (dashes or underscores).

    Raises OptionError naming the file and the key for an unknown key or a wrong type.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = p.write_text("epochs: 3\\nbatch-size: 64\\nlr: 1\\n")
    >>> read_config_file(p)
    {'epochs': 3, 'batch_size': 64, 'lr': 1.0}
    """
    path = Path(path)
    if not path.is_file():
        raise OptionError(f"no such config file: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OptionError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    else:
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise OptionError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise OptionError(f"{path}: expected a mapping of option names to values")
    known = field_types()
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in known:
            hint = did_you_mean(name, known)
            raise OptionError(f"{path}: unknown option `{key}`" + (f" ({hint})" if hint else ""))
        out[name] = _coerce(name, value, str(path))
    return out


def make_config(file_values: dict[str, Any], cli_values: dict[str, Any]) -> TrainConfig:
    """Defaults, then the config file, then the command line.

    >>> c = make_config({"epochs": 3, "lr": 0.2}, {"lr": 0.05})
    >>> c.epochs, c.lr
    (3, 0.05)
    """
    return TrainConfig(**{**file_values, **cli_values})


def apply_paper_preset(config: TrainConfig, steps_per_epoch: int) -> None:
    """`--schedule paper`: stop at 64k iterations (sooner with --max-steps or --epochs).

    The recipe's other values (lr 0.1, momentum 0.9, wd 1e-4, batch 128) are the
    defaults already; options given explicitly keep their values.
    """
    config.max_steps = config.max_steps or PAPER_STEPS
    if config.epochs is None:
        config.epochs = math.ceil(config.max_steps / steps_per_epoch)


def dump_yaml(config: TrainConfig, header: str = "") -> str:
    """The resolved options as YAML (readable back with --config)."""
    import yaml

    values = config.to_dict()
    values["resume"] = None  # reusing the file starts a new run; --resume continues one
    body = yaml.safe_dump(values, sort_keys=False, default_flow_style=False)
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    return ("\n".join(lines) + "\n" if lines else "") + body
