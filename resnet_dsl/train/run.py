"""`train()`: from a compiled network (or any nn.Module) and options to a trained run folder.

The order matters and is kept in this one function: options are checked, the process
joins its torchrun group and picks its device, seeds are set, the data is read and
checked against the network, the options the data decides are resolved, the model is
built, moved and (optionally) converted to SyncBatchNorm, the optimiser, scaler and EMA
are made, a checkpoint is loaded when resuming (after every random draw of the setup,
so the random state it restores is the one the loop continues from), the model is
wrapped in DDP and compiled, and the loop runs. Rank 0 writes the run folder:

    OUTPUT_DIR/config.yaml    the resolved options (reusable with --config)
    OUTPUT_DIR/metrics.csv    one row per epoch
    OUTPUT_DIR/log.txt        the summary lines
    OUTPUT_DIR/last.pt        checkpoint after every epoch (and on Ctrl-C)
    OUTPUT_DIR/best.pt        checkpoint of the best test accuracy
    OUTPUT_DIR/curves.png     loss and accuracy per epoch
    OUTPUT_DIR/tensorboard/   scalars, if TensorBoard is installed
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from resnet_dsl.errors import error
from resnet_dsl.train import checkpoint, finetune
from resnet_dsl.train.augment import BatchTransform
from resnet_dsl.train.config import OptionError, TrainConfig, apply_paper_preset, dump_yaml
from resnet_dsl.train.data import load_data
from resnet_dsl.train.data.dataset import Data
from resnet_dsl.train.data.folder import UnreadableImage, unreadable_message
from resnet_dsl.train.data.gpu_loader import DeviceLoader
from resnet_dsl.train.data.host_loader import HostLoader
from resnet_dsl.train.data.sampler import EpochSampler
from resnet_dsl.train.distributed import (Dist, convert_sync_batchnorm, from_env, resolve_device,
                                          setup, teardown, wrap)
from resnet_dsl.train.loop import Loop, LoopState
from resnet_dsl.train.metrics import TensorBoard
from resnet_dsl.train.optim import ModelEma, make_optimizer
from resnet_dsl.train.plots import write_curves
from resnet_dsl.train.schedule import make_schedule


@dataclass
class TrainResult:
    """What a run leaves: the trained module (last weights, eval mode) and its files.

    This is where a post-training step hooks in (an ONNX export of `model`, say).
    """

    model: nn.Module
    output_dir: Path
    rows: list[dict]
    completed: bool                     # False: stopped by a signal; resume from last.pt
    main: bool                          # rank 0 (the process that wrote the files)
    best_acc: float
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def last_checkpoint(self) -> Path:
        return self.output_dir / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.output_dir / "best.pt"


def train(config: TrainConfig, net=None, *, model: nn.Module | None = None,
          input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None,
          spec: dict | None = None, command: str = "", data: Data | None = None) -> TrainResult:
    """Train `net` (a compiled IR) or `model` (any image classifier) as `config` says.

    Raises `OptionError` for impossible options and `RnetError` for data or checkpoint
    problems. Under torchrun, every process calls it; rank 0 alone writes files.
    `data` replaces `config.data` with data built in Python (a `Data`: a subset of the
    classes, say); `config.weights`, `freeze` and `head_lr` fine-tune (finetune.py).

    >>> from resnet_dsl.compiler import compile_network                       # doctest: +SKIP
    >>> net = compile_network("specs/cifar_resnet20.rnet")                   # doctest: +SKIP
    >>> train(TrainConfig(epochs=1, output_dir="runs/r20"), net).rows[-1]["test_acc"]  # doctest: +SKIP
    0.93...
    """
    config.check()
    if config.tensorboard and not TensorBoard.available():
        raise OptionError("--tensorboard needs the tensorboard package (pip install tensorboard)")
    if net is None and (model is None or input_shape is None):
        raise TypeError("train() needs a compiled network, or a model and its input_shape")
    input_shape = tuple(input_shape or net.input_shape)
    if num_classes is None and net is not None and net.output_shape and len(net.output_shape) == 1:
        num_classes = net.output_shape[0]
    d = from_env()
    if config.deterministic:  # before anything touches cuBLAS
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device = resolve_device(config.device, d)
    setup(d, device)
    try:
        return _train(config, net, model, input_shape, num_classes, spec or {}, command, d, device,
                      data)
    finally:
        teardown(d)


def _configure_backends(config: TrainConfig, device: torch.device) -> None:
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True           # pick the fastest conv kernels
        torch.backends.cuda.matmul.allow_tf32 = True     # fp32 matmuls on tensor cores
        torch.backends.cudnn.allow_tf32 = True


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (the model's initialisation)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_fit(data: Data, input_shape: tuple[int, int, int], num_classes: int | None) -> None:
    if data.image_shape[0] != input_shape[0]:
        raise error("E804", f"--data {data.name} has {data.image_shape[0]}-channel images; the "
                            f"network takes {input_shape[0]} channels",
                    help=f"--input {data.image_shape[0]}x{input_shape[1]}x{input_shape[2]} changes "
                         "the network's input")
    if num_classes is not None and num_classes != data.num_classes:
        raise error("E804", f"--data {data.name} has {data.num_classes} classes; the network "
                            f"outputs {num_classes}",
                    help=f"most specs take a `classes` parameter: --set classes={data.num_classes}")


def _resolve(config: TrainConfig, data: Data, d: Dist, default_output: str) -> None:
    """Fill the options the data decides, and check the batch against the data."""
    if config.hflip is None:
        config.hflip = data.hflip
    if config.crop_padding is None:
        config.crop_padding = data.crop_padding
    if config.output_dir is None:
        config.output_dir = default_output
    if config.batch_size % d.world_size:
        raise OptionError(f"--batch-size {config.batch_size} (the global batch) must be a multiple "
                          f"of the {d.world_size} processes")
    if config.batch_size > len(data.train):
        raise OptionError(f"--batch-size {config.batch_size} is larger than the {len(data.train):,} "
                          f"training images of --data {data.name}")
    steps_per_epoch = len(data.train) // config.batch_size
    if config.schedule == "paper":
        apply_paper_preset(config, steps_per_epoch)
    elif config.epochs is None:
        config.epochs = (-(-config.max_steps // steps_per_epoch) if config.max_steps
                         else data.default_epochs)


def _loaders(config: TrainConfig, data: Data, d: Dist, device: torch.device):
    kind = config.loader
    if kind == "auto":
        kind = "device" if data.train.resident and _fits(data, device) else "dataloader"
    if kind == "device" and not (data.train.resident and data.test.resident):
        raise OptionError(f"--loader device needs data held in memory; --data {data.name} is read "
                          "from files (use --loader dataloader)")
    workers = config.workers if config.workers is not None else \
        max(1, min(8, (os.cpu_count() or 2) // d.local_world_size - 1))
    made = []
    for split, shuffle in ((data.train, True), (data.test, False)):
        sampler = EpochSampler(len(split), batch_size=config.batch_size, rank=d.rank,
                               world_size=d.world_size, seed=config.seed, shuffle=shuffle,
                               drop_last=shuffle)
        if kind == "device":
            made.append(DeviceLoader(split, sampler, device))
        else:
            made.append(HostLoader(split, sampler, device, workers))
    return made


def _fits(data: Data, device: torch.device) -> bool:
    """Resident data on a GPU may take half of its free memory."""
    if device.type != "cuda":
        return True
    nbytes = data.train.images.numel() + data.test.images.numel()
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < free // 2


def eval_transform(data: Data, input_shape: tuple[int, ...]) -> dict:
    """How the run turns a test image into the network's input, saved with its checkpoints
    for `rnetc predict`: decode as `colour` (grey: one channel, repeated over the
    network's), fit the shorter side to `image_size` and centre-crop it, scale to 0..1,
    normalise with `mean`/`std`, then resize bilinearly to `input_size` where it differs
    (CIFAR's 32x32 for a larger network)."""
    grey = data.name == "digits" or data.image_shape[0] == 1
    return {"colour": "grey" if grey else "rgb", "channels": int(input_shape[0]),
            "image_size": [int(v) for v in data.image_shape[1:]],
            "input_size": [int(v) for v in input_shape[1:]],
            "mean": list(data.mean), "std": list(data.std)}


def refuse_other_network(out: Path, spec: dict, name: str, input_shape: tuple[int, ...]) -> None:
    """A fresh run (not --resume) into a folder whose checkpoints another network wrote
    would replace them: refuse, naming that network. A rerun of the same network (same
    spec parameters and input) starts over there, as before."""
    mine = (spec.get("network") or name, spec.get("params") or {}, list(input_shape))
    for file in (out / n for n in checkpoint.CHECKPOINT_NAMES):
        if not file.is_file():
            continue
        try:
            saved = checkpoint.load(file).get("spec") or {}
        except Exception:  # not a checkpoint rnetc can read: not one of a known network
            continue
        if not isinstance(saved, dict) or not saved.get("network"):
            continue
        theirs = (saved["network"], saved.get("params") or {}, list(saved.get("input_shape") or input_shape))
        if theirs == mine:
            continue

        def words(network, params, shape):
            sets = "".join(f" --set {k}={v}" for k, v in sorted(params.items()))
            return f"{network}{sets} (input {'x'.join(map(str, shape))})"

        raise OptionError(f"--output-dir {out} holds {file.name} of {words(*theirs)}"
                          f"{' from ' + saved['file'] if saved.get('file') else ''}; training "
                          f"{words(*mine)} there would replace it. Give this run its own folder "
                          f"(--output-dir {out.parent / mine[0]}), or delete {out} first; "
                          "--resume continues a run of the same network")


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OptionError(f"--output-dir {out}: cannot write there ({exc.strerror or exc})") from None


def _train(config, net, model, input_shape, num_classes, spec, command, d: Dist, device,
           data: Data | None = None) -> TrainResult:
    _configure_backends(config, device)
    seed_everything(config.seed)
    data = data or load_data(config.data, input_shape=input_shape, num_classes=num_classes or 10,
                     data_dir=Path(config.data_dir) if config.data_dir else None,
                     synthetic_size=config.synthetic_size, seed=config.seed)
    check_fit(data, input_shape, num_classes)
    if config.subset:
        data.train, data.test = data.train.head(config.subset), data.test.head(config.subset)
    name = net.name if net is not None else type(model).__name__.lower()
    _resolve(config, data, d, str(Path("runs") / name))
    steps_per_epoch = len(data.train) // config.batch_size
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    on_cuda = device.type == "cuda"
    amp = config.amp if config.amp is not None else on_cuda
    channels_last = config.channels_last if config.channels_last is not None else on_cuda
    amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[config.amp_dtype] if amp else None

    if model is None:
        from resnet_dsl.backends.torch import build_module

        model = build_module(net)
    out = Path(config.output_dir)
    resume = config.resume
    if resume == "auto":
        resume = str(out / "last.pt")
    notes = list(data.notes)
    saved = checkpoint.load_training(resume) if resume else None  # on the CPU
    if saved is not None:  # a resumed run keeps its fine-tuning settings
        notes += finetune.resume_settings(config, saved.get("config") or {}, resume)
    head = finetune.head_modules(model, net)
    if config.head_lr is not None and not head:
        raise OptionError("--head-lr: this network has no head section")
    loaded = None
    if config.weights and saved is None:  # resuming: the checkpoint holds the weights
        loaded = finetune.load_pretrained(model, config.weights, net=net, network=name)
    module = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    if config.sync_bn and d.enabled:
        module = convert_sync_batchnorm(module, device)
    freeze = finetune.plan_freeze(module, config.freeze, head)
    frozen_norms = finetune.apply_freeze(module, freeze)
    optimizer = make_optimizer(module, config, device, head=freeze.head_parameters(module))
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    ema = ModelEma(module, config.model_ema_decay) if config.model_ema else None
    schedule = make_schedule(config, steps_per_epoch, total_steps)
    aug_generator = torch.Generator(device=device).manual_seed(config.seed + 1)

    if not resume:
        refuse_other_network(out, spec, name, input_shape)
    state = LoopState()
    if resume:  # load_state_dict copies to the device
        checkpoint.load_weights(module, saved["model"], resume, network=name, command="resume")
        optimizer.load_state_dict(saved["optimizer"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        if ema is not None:
            if saved.get("ema"):
                ema.load_state_dict(saved["ema"])
            else:
                ema = ModelEma(module, config.model_ema_decay)
        checkpoint.set_rng_state(saved["rng"], aug_generator)
        state = LoopState.from_dict(saved["loop"])
        if saved.get("schedule") != schedule.to_dict():
            notes.append(f"the learning-rate schedule differs from the one {resume} was trained with")
        where = (f"epoch {state.epoch + 1}, step {state.epoch_step + 1}" if state.epoch_step
                 else f"the end of epoch {state.epoch}")
        notes.append(f"resumed from {resume} at {where} (global step {state.step})")

    train_model = wrap(module, d, device)
    if config.compile:
        train_model = torch.compile(train_model)
    eval_model = module if d.enabled or not config.compile else train_model
    train_loader, test_loader = _loaders(config, data, d, device)
    transform = BatchTransform(mean=data.mean, std=data.std, padding=config.crop_padding,
                               hflip=config.hflip, device=device, size=tuple(input_shape[1:]),
                               channels_last=channels_last)

    tb_folder = None
    if d.main:
        _check_writable(out)
        for p in checkpoint.remove_partials(out):
            notes.append(f"removed {p.name}, left by a run that was killed while saving")
        header = "\n".join(filter(None, [
            f"rnetc training options, resolved ({command})" if command else "rnetc training options, resolved",
            f"network {name}: {spec.get('file', '')} {spec.get('params', '')}".rstrip(),
            f"torch {torch.__version__}, {d.world_size} process(es), device {device.type}"]))
        (out / "config.yaml").write_text(dump_yaml(config, header), encoding="utf-8")
        if not resume:
            (out / "log.txt").write_text("", encoding="utf-8")
        want_tb = config.tensorboard if config.tensorboard is not None else TensorBoard.available()
        tb_folder = out / "tensorboard" if want_tb else None
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        if loaded is not None:
            print(f"weights {config.weights}: {loaded.describe()}", flush=True)
        if config.weights or config.freeze or config.head_lr is not None:
            print(freeze.describe(config.head_lr), flush=True)
        print(f"training {name} on {data.name} ({len(data.train):,} train / {len(data.test):,} test "
              f"images) for {config.epochs} epoch{'s' if config.epochs != 1 else ''} "
              f"({total_steps:,} steps of {config.batch_size}) on {device}"
              f"{f' x {d.world_size} processes' if d.enabled else ''}; "
              f"{train_loader.label}{', ' + config.amp_dtype if amp else ''}"
              f"{', channels_last' if channels_last else ''}{', compiled' if config.compile else ''}; "
              f"writing {out}/", flush=True)

    extra = {
        "config": config.to_dict(),
        "spec": spec,
        "data": {"name": data.name, "classes": data.classes, "mean": list(data.mean),
                 "std": list(data.std), "image_shape": list(data.image_shape),
                 "class_names": data.classes if data.name != "synthetic" else None,
                 "eval_transform": eval_transform(data, input_shape)},
    }
    loop = Loop(model=train_model, module=module, eval_model=eval_model, optimizer=optimizer,
                scaler=scaler, ema=ema, schedule=schedule, train_loader=train_loader,
                test_loader=test_loader, transform=transform, aug_generator=aug_generator,
                dist=d, device=device, amp_dtype=amp_dtype, label_smoothing=config.label_smoothing,
                epochs=config.epochs, total_steps=total_steps, print_freq=config.print_freq,
                output_dir=out if d.main else None, checkpoint_extra=extra,
                tensorboard=TensorBoard(tb_folder), state=state,
                log_file=out / "log.txt" if d.main else None, frozen_norms=frozen_norms)
    try:
        completed = loop.run()
    except UnreadableImage as exc:  # raised in a DataLoader worker: its message holds the file
        raise error("E802", unreadable_message(exc)) from None
    finally:
        loop.tensorboard.close()
    files: dict[str, Path] = {}
    if d.main:
        for key in ("config.yaml", "metrics.csv", "log.txt", "last.pt", "best.pt"):
            if (out / key).exists():
                files[key] = out / key
        if write_curves(state.rows, out / "curves.png", title=f"{name} on {data.name}"):
            files["curves.png"] = out / "curves.png"
    module.eval()
    return TrainResult(model=module, output_dir=out, rows=state.rows, completed=completed,
                       main=d.main, best_acc=state.best_acc, files=files)
