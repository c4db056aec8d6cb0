"""The epoch loop: steps, evaluation, logging, checkpoints, and stopping cleanly.

One step: set the step's learning rate, gather and augment the batch on the device,
forward and backward under autocast, optimiser (and EMA) update, add loss and accuracy
to device-side sums. Nothing in a step reads a value back from the GPU; the sums are
read every --print-freq steps and at the end of the epoch.

Ctrl-C or SIGTERM asks the loop to stop: it finishes the current step, writes
`last.pt` with the position inside the epoch, and returns; a second Ctrl-C aborts at
once. Several processes agree to stop at the same step (checked at logging steps).
After each epoch: evaluate (also the EMA weights), append a row to metrics.csv, print
the summary line, write `last.pt` and, when the test accuracy improved, `best.pt`.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from resnet_dsl.train import checkpoint
from resnet_dsl.train.augment import BatchTransform
from resnet_dsl.train.config import OptionError
from resnet_dsl.train.distributed import Dist, any_process
from resnet_dsl.train.evaluate import evaluate_model
from resnet_dsl.train.metrics import Meter, TensorBoard, csv_text, format_row
from resnet_dsl.train.optim import ModelEma, set_lr
from resnet_dsl.train.progress import Progress
from resnet_dsl.train.schedule import Schedule


@dataclass
class LoopState:
    """The counters a checkpoint carries besides weights and optimiser state."""

    epoch: int = 0                  # completed epochs
    step: int = 0                   # optimiser steps taken in the whole run
    epoch_step: int = 0             # steps taken in the current, unfinished epoch
    epoch_sums: list[float] | None = None  # its loss/correct/count sums (all processes)
    epoch_seconds: float = 0.0      # its training time so far
    best_acc: float = -1.0
    rows: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "epoch_step": self.epoch_step,
                "epoch_sums": self.epoch_sums, "epoch_seconds": self.epoch_seconds,
                "best_acc": self.best_acc, "history": self.rows}

    @classmethod
    def from_dict(cls, d: dict) -> LoopState:
        return cls(d["epoch"], d["step"], d["epoch_step"], d["epoch_sums"], d["epoch_seconds"],
                   d["best_acc"], list(d["history"]))


class StopRequest:
    """SIGINT/SIGTERM set a flag instead of killing the run; a second signal aborts."""

    def __init__(self, announce: bool):
        self.requested = False
        self.announce = announce
        self._previous: dict = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            name = signal.Signals(signum).name
            print(f"\n{name}: stopping after this step and saving a checkpoint "
                  "(press Ctrl-C again to abort without saving)", flush=True)


@dataclass
class Loop:
    """Everything the epoch loop touches; `run.py` builds it."""

    model: nn.Module                 # what the step calls (DDP and/or compiled)
    module: nn.Module                # the plain module (state dict, EMA, eval under DDP)
    eval_model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    ema: ModelEma | None
    schedule: Schedule
    train_loader: object
    test_loader: object
    transform: BatchTransform
    aug_generator: torch.Generator
    dist: Dist
    device: torch.device
    amp_dtype: torch.dtype | None
    label_smoothing: float
    epochs: int
    total_steps: int
    print_freq: int
    output_dir: Path | None          # None on processes other than rank 0
    checkpoint_extra: dict           # config, spec, data description: saved as they are
    tensorboard: TensorBoard
    state: LoopState = field(default_factory=LoopState)
    log_file: Path | None = None
    frozen_norms: list[nn.Module] = field(default_factory=list)  # --freeze: kept in eval mode

    # -- one step ------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            logits = self.model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.module)
        return loss, logits

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        """Test loss (without label smoothing) and accuracy over all processes."""
        result = evaluate_model(model, self.test_loader, self.transform, device=self.device,
                                amp_dtype=self.amp_dtype, dist=self.dist)
        return result["loss"], result["acc"]

    # -- checkpoints -----------------------------------------------------------------------
    def _save(self, best: bool) -> None:
        if self.output_dir is None:
            return
        state = {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "schedule": self.schedule.to_dict(),
            "loop": self.state.to_dict(),
            "rng": checkpoint.rng_state(self.aug_generator),
            **self.checkpoint_extra,
        }
        paths = [self.output_dir / "last.pt"] + ([self.output_dir / "best.pt"] if best else [])
        try:
            checkpoint.save(state, *paths)
        except OSError as exc:  # a full disk, say: the previous checkpoint is still whole
            raise OptionError(f"cannot write {paths[0]} ({exc.strerror or exc}); the previous "
                              "checkpoint is intact") from None

    def _log(self, line: str) -> None:
        if self.output_dir is None:
            return
        print(line, flush=True)
        if self.log_file is not None:
            with open(self.log_file, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> bool:
        """Train to the end (True) or until asked to stop (False, after saving)."""
        st = self.state
        main = self.output_dir is not None
        steps_per_epoch = len(self.train_loader)
        sampler = self.train_loader.sampler
        with StopRequest(announce=main) as stop:
            for epoch in range(st.epoch, self.epochs):
                steps = min(steps_per_epoch, self.total_steps - epoch * steps_per_epoch)
                if steps <= 0:
                    break
                self.train_loader.set_epoch(epoch)
                start = st.epoch_step
                meter = Meter(self.device, st.epoch_sums if (start and self.dist.main) else None)
                progress = Progress(epoch + 1, self.epochs, steps, start, enabled=main)
                self.model.train()
                for norm in self.frozen_norms:   # frozen BatchNorms keep their statistics
                    norm.eval()
                t0 = time.perf_counter()
                seen = 0
                stopping = False
                for i, (images, labels) in enumerate(self.train_loader.iterate(start), start):
                    if i >= steps:
                        break
                    set_lr(self.optimizer, self.schedule.lr(st.step))
                    global_n = min(sampler.batch_size, sampler.n - i * sampler.batch_size)
                    draw = self.transform.draw(global_n, self.aug_generator)
                    x = self.transform.train(images, draw.shard(self.dist.rank, self.dist.world_size))
                    loss, logits = self._step(x, labels)
                    meter.add(loss, logits, labels)
                    seen += global_n
                    st.step += 1
                    st.epoch_step = i + 1
                    progress.advance()
                    logging_step = (i + 1) % self.print_freq == 0
                    if logging_step:
                        loss_v, acc_v, _ = meter.read(self.dist)
                        rate = seen / max(time.perf_counter() - t0, 1e-9)
                        progress.update(i + 1, loss_v, acc_v, self.schedule.lr(st.step - 1), rate)
                    if self.dist.enabled:
                        stopping = logging_step and any_process(stop.requested, self.dist, self.device)
                    else:
                        stopping = stop.requested
                    if stopping and i + 1 < steps:
                        break
                    stopping = False
                progress.close()
                if stopping:
                    st.epoch_sums = meter.global_sums(self.dist)
                    st.epoch_seconds += time.perf_counter() - t0
                    self._save(best=False)
                    if main:
                        print(f"stopped in epoch {epoch + 1} after step {st.epoch_step} of {steps}; "
                              f"saved {self.output_dir / 'last.pt'}", flush=True)
                    return False
                train_loss, train_acc, _ = meter.read(self.dist)  # waits for the GPU
                train_seconds = st.epoch_seconds + time.perf_counter() - t0
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                test_loss, test_acc = self.evaluate(self.eval_model)
                ema_loss = ema_acc = None
                if self.ema is not None:
                    ema_loss, ema_acc = self.evaluate(self.ema.module)
                row = {"epoch": epoch + 1, "step": st.step, "lr": self.schedule.lr(st.step - 1),
                       "train_loss": train_loss, "train_acc": train_acc,
                       "test_loss": test_loss, "test_acc": test_acc,
                       "ema_test_loss": ema_loss, "ema_test_acc": ema_acc,
                       "images_per_s": rate, "epoch_time_s": train_seconds}
                st.rows.append(row)
                score = ema_acc if ema_acc is not None else test_acc
                improved = score > st.best_acc
                if improved:
                    st.best_acc = score
                st.epoch, st.epoch_step, st.epoch_sums, st.epoch_seconds = epoch + 1, 0, None, 0.0
                if main:
                    (self.output_dir / "metrics.csv").write_text(csv_text(st.rows), encoding="utf-8")
                    self.tensorboard.add_row(row)
                self._save(best=improved)
                self._log(format_row(row, self.epochs))
                if any_process(stop.requested, self.dist, self.device) and epoch + 1 < self.epochs:
                    if main:
                        print(f"stopped after epoch {epoch + 1}; saved {self.output_dir / 'last.pt'}",
                              flush=True)
                    return False
        return True
