"""Checkpoints that survive a crash, and the random state that makes resuming exact.

A checkpoint is serialised once to memory, then written to a temporary file in the
target's folder, fsync'ed and renamed over the target with `os.replace` (atomic on POSIX
and Windows; `resnet_dsl.files.write_atomic`), and the folder is fsync'ed so the rename
itself is durable. A process killed at any moment leaves either the old file or the new one,
never a torn one; at worst a `.NAME.XXXX.tmp` file, which the next run in that folder
removes. Checkpoints are read with `weights_only=True`: they hold tensors, numbers,
strings, lists and dicts only, so loading one cannot run code.

Contents (`FORMAT`): model, optimizer, scaler, EMA, schedule, epoch, step, the step
within an interrupted epoch, the metrics so far, the best accuracy, the resolved
options, the spec, and every random state: Python's, numpy's, torch's CPU and CUDA
generators, and the augmentation generator on the device.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import numpy as np
import torch

from resnet_dsl.errors import error
from resnet_dsl.files import write_atomic

FORMAT = "rnetc-train-checkpoint"
VERSION = 1
CHECKPOINT_NAMES = ("last.pt", "best.pt")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its rename is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new content.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.bin"
    >>> atomic_write(p, b"one"); atomic_write(p, b"two"); p.read_bytes(), sorted(os.listdir(p.parent))
    (b'two', ['x.bin'])
    """
    path = write_atomic(path, lambda tmp: tmp.write_bytes(data))
    _fsync_dir(path.parent)


def save(state: dict, *paths: Path) -> None:
    """Serialise `state` once and write it atomically to each path."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buffer)
    data = buffer.getvalue()
    for path in paths:
        atomic_write(path, data)


def remove_partials(folder: Path) -> list[Path]:
    """Delete temporary checkpoint files a killed run left in `folder`; return them."""
    folder = Path(folder)
    found = sorted(p for name in CHECKPOINT_NAMES for p in folder.glob(f".{name}.*.tmp")) \
        if folder.is_dir() else []
    for p in found:
        p.unlink(missing_ok=True)
    return found


def load(path: str | Path, map_location: torch.device | str = "cpu") -> dict:
    """Read a file with `weights_only=True`; E805 if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise error("E805", f"no such checkpoint: {path}" if not path.exists()
                    else f"{path} is a folder, not a checkpoint",
                    help="a run writes OUTPUT_DIR/last.pt every epoch and OUTPUT_DIR/best.pt")
    from resnet_dsl.backends.torch.weights import torch_load

    return torch_load(path, what="checkpoint", map_location=map_location)


def load_training(path: str | Path, map_location: torch.device | str = "cpu") -> dict:
    """A checkpoint rnetc's trainer wrote (E805 for any other file)."""
    state = load(path, map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise error("E805", f"{path} is not a training checkpoint written by rnetc",
                    help="--resume takes OUTPUT_DIR/last.pt (or best.pt) of an earlier run")
    if state.get("version") != VERSION:
        raise error("E805", f"{path} has checkpoint version {state.get('version')}; this rnetc "
                            f"reads version {VERSION}")
    return state


# -- random state -------------------------------------------------------------------------
def load_weights(module: torch.nn.Module, state: dict, path: str | Path, *, network: str,
                 command: str) -> None:
    """Load `state` into `module` after checking it tensor by tensor (E805 names the first
    mismatch, and says to `command` (resume, evaluate) with the options of the run that
    wrote the file)."""
    from resnet_dsl.backends.torch.weights import fit_state

    state = fit_state(state, module.state_dict(), source=str(path), network=network,
                      hint=f"{command} with the spec and the --set/--input options of the run "
                           "that wrote it")
    module.load_state_dict(state)


def rng_state(aug_generator: torch.Generator | None = None) -> dict:
    """Every random state a run draws from, as checkpoint-safe values."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_initialized() else [],
        "augment": aug_generator.get_state() if aug_generator is not None else None,
    }
    return state


def set_rng_state(state: dict, aug_generator: torch.Generator | None = None) -> None:
    """Restore what `rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": np_state["key"].numpy().astype(np.uint32),
                                   "pos": np_state["pos"]},
                         "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]})
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)
    if aug_generator is not None and state.get("augment") is not None:
        aug_generator.set_state(state["augment"].cpu())
