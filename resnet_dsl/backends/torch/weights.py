"""Weights files: saving and loading a model's state dict, safetensors (.safetensors) or
torch (.pt, .pth), and reading one checked against a network.

Files are written atomically (resnet_dsl.files). Loading a .pt/.pth file uses
`torch.load(weights_only=True)`, which refuses a pickle that asks for anything but
tensors and plain containers, so a malicious file never runs code (`read_weights` makes
that an E805 error); a full unpickle is never attempted. A torchvision checkpoint loads
into the spec of the same network as it is: the names are the same.

`read_weights` also takes a training checkpoint (a dict whose `model` entry is the state
dict, as `rnetc train` writes it). `fit_state` compares a state dict with the network's,
tensor by tensor in the network's order, and names the first mismatch: a missing
tensor, a shape that differs (both shapes), or a tensor the network does not have.
Export, evaluation and resuming a run all check weights with it.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from resnet_dsl.errors import error
from resnet_dsl.files import write_atomic

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
CHECKPOINT_KEY = "model"  # rnetc train's checkpoints: {"format": ..., "model": state, ...}

_SAFE = ("weights are read safely (safetensors, or torch.load with weights_only=True): "
         "tensors, numbers, strings, lists and dicts only")
_HELP = ("export with the spec and the --set/--input options of the run that wrote the "
         "weights, or give the weights of this network")


def weight_format(path: str | os.PathLike) -> str:
    """"safetensors" or "torch", from the file's suffix; ValueError for another suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise ValueError(f"{path}: weights are written as {', '.join(WEIGHT_SUFFIXES)} files, "
                         f"not {suffix or 'a file without a suffix'}")
    return "safetensors" if suffix == ".safetensors" else "torch"


def save_weights(model: nn.Module, path: str | os.PathLike,
                 metadata: dict[str, str] | None = None) -> Path:
    """Write `model.state_dict()` (on the CPU) to `path`, atomically.

    >>> import resnet_dsl, tempfile, pathlib
    >>> model = resnet_dsl.build("specs/cifar_resnet20.rnet")
    >>> path = save_weights(model, pathlib.Path(tempfile.mkdtemp()) / "w.safetensors")
    >>> load_weights(resnet_dsl.build("specs/cifar_resnet20.rnet"), path)
    <All keys matched successfully>
    """
    kind = weight_format(path)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    if any(t.is_meta for t in state.values()):
        raise ValueError("a model on the meta device has no weights to save")
    if kind == "safetensors":
        from safetensors.torch import save_file

        return write_atomic(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))
    return write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a .safetensors, .pt or .pth file (onto the CPU)."""
    if weight_format(path) == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def load_weights(model: nn.Module, path: str | os.PathLike, *, strict: bool = True):
    """Load a weights file into `model` (`strict`: every name must match both ways)."""
    return model.load_state_dict(load_state(path), strict=strict)


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in a weights file or training checkpoint (on the CPU); E805 otherwise.

    >>> import resnet_dsl, tempfile, pathlib
    >>> from resnet_dsl.backends.torch import save_weights
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.pt"
    >>> _ = save_weights(resnet_dsl.build("specs/cifar_resnet20.rnet"), path)
    >>> len(read_weights(path))
    116
    """
    path = Path(path)
    if not path.is_file():
        raise error("E805", f"no such weights file: {path}" if not path.exists()
                    else f"{path} is a folder, not a weights file")
    suffix = path.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise error("E805", f"{path}: weights are read from {', '.join(WEIGHT_SUFFIXES)} files, "
                            f"not {suffix or 'a file without a suffix'}")
    if suffix != ".safetensors":
        return _state_dict(torch_load(path, what="weights file"), path)
    try:
        from safetensors.torch import load_file

        loaded = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises many types; all mean "unusable"
        raise error("E805", f"{path}: not a safetensors weights file ({type(exc).__name__}: "
                            f"{_first_line(exc)})", help=_SAFE) from None
    return _state_dict(loaded, path)


def torch_load(path: Path, *, what: str, map_location: torch.device | str = "cpu") -> object:
    """`torch.load(path, weights_only=True)`, with E805 for a file it cannot or will not
    read: a pickle that asks for anything but tensors and plain values is refused (nothing
    in it runs) and the message names what it asked for, never torch's advice to retry
    with weights_only=False."""
    try:
        with warnings.catch_warnings():  # "pickle protocol 4 ..." says nothing useful here
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise error("E805", f"{path}: refused: not a pickle of tensors and plain values only "
                            f"({_refusal(exc)}); nothing in it was run", help=_SAFE) from None
    except Exception as exc:  # torch raises many types for a bad file; all mean "unusable"
        raise error("E805", f"{path}: not a PyTorch {what} ({type(exc).__name__}: "
                            f"{_first_line(exc)})", help=_SAFE) from None


def _state_dict(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    """The state dict itself, or the `model` entry of a training checkpoint."""
    if isinstance(loaded, Mapping) and isinstance(loaded.get(CHECKPOINT_KEY), Mapping):
        loaded = loaded[CHECKPOINT_KEY]
    if not isinstance(loaded, Mapping) or not loaded:
        raise error("E805", f"{path} holds {_describe(loaded)}, not a state dict of tensors",
                    help="give a weights file (rnetc compile -o) or a training checkpoint")
    for name, value in loaded.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise error("E805", f"{path} is not a state dict of tensors: its entry `{name}` is "
                                f"{_describe(value)}",
                        help="give a weights file (rnetc compile -o) or a training checkpoint")
    return dict(loaded)


def fit_state(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
              *, source: str, network: str, hint: str = _HELP) -> dict[str, torch.Tensor]:
    """Check `state` against the model's own state dict (`expected`, meta tensors will do);
    return it with floating-point tensors as the model's dtype. E805 names the first
    mismatching tensor in the model's order, then the number of further ones.

    >>> e = {"w": torch.empty(2, 3, device="meta")}
    >>> fit_state({"w": torch.zeros(3, 2)}, e, source="w.pt", network="n")
    Traceback (most recent call last):
    ...
    resnet_dsl.errors.RnetError: error[E805]: w.pt does not fit n: tensor `w` has shape 3x2 in the file, the network needs 2x3
    """
    problems: list[str] = []
    for name, want in expected.items():
        got = state.get(name)
        if got is None:
            problems.append(f"tensor `{name}` (shape {_shape(want)}) is missing from the file")
        elif tuple(got.shape) != tuple(want.shape):
            problems.append(f"tensor `{name}` has shape {_shape(got)} in the file, the network "
                            f"needs {_shape(want)}")
        elif got.is_floating_point() != want.is_floating_point():
            problems.append(f"tensor `{name}` is {got.dtype} in the file, the network needs "
                            f"{want.dtype}")
    problems += [f"the file has a tensor `{name}` (shape {_shape(state[name])}) that the network "
                 f"does not" for name in state if name not in expected]
    if problems:
        more = f" (and {len(problems) - 1} more mismatches)" if len(problems) > 1 else ""
        raise error("E805", f"{source} does not fit {network}: {problems[0]}{more}", help=hint)
    return {name: (tensor.to(expected[name].dtype) if tensor.is_floating_point() else tensor)
            for name, tensor in state.items()}


def _shape(tensor: torch.Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"


def _refusal(exc: BaseException) -> str:
    """torch's reason ("Unsupported global: GLOBAL posix.system", "Trying to load
    unsupported GLOBAL posix.system whose module posix is blocked", "Unsupported operand
    155"), without its advice to retry with weights_only=False, which would run the file's
    code, or to allow the global."""
    text = str(exc)
    # torch words it three ways: the reason after "WeightsUnpickler error:" on its line,
    # in the paragraph after it, or in a paragraph of its own after the advice
    found = re.search(r"WeightsUnpickler error:[ \t]*(\S[^\n]*)", text)
    if found:
        reason = found.group(1)
    else:
        advice = ("Weights only load failed", "Please file an issue", "Check the documentation")
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        reasons = [p for p in paragraphs if not p.startswith(advice)]
        if not reasons:
            return "the file asks for something the safe loader does not admit"
        reason = reasons[0].splitlines()[0]
    return reason.partition(" was not an allowed global")[0].strip().rstrip(".")


def _describe(value: object) -> str:
    if isinstance(value, Mapping):
        return "an empty dict" if not value else "a dict"
    return f"a {type(value).__name__}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__



# -- weights to start training from (rnetc train --weights) ---------------------------------
STATE_KEYS = ("state_dict", "model", "model_ema")  # timm's train.py, torchvision's references
WRAPPER_PREFIXES = ("module.", "_orig_mod.")        # DistributedDataParallel, torch.compile


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in any file a training run can start from, on the CPU; E805 otherwise.

    A plain state dict (.pth/.pt), a dict holding one under `state_dict` (timm), `model`
    or `model_ema` (torchvision's reference scripts; tried in that order), a .safetensors
    file, or a training checkpoint of rnetc (its `model`). A `module.` prefix
    (DistributedDataParallel) or `_orig_mod.` (torch.compile) on every name is removed.
    Read as `read_weights` reads: nothing in the file can run.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ddp.pth"
    >>> torch.save({"state_dict": {"module.fc.weight": torch.zeros(2, 3)}}, path)
    >>> list(read_state_dict(path))
    ['fc.weight']
    """
    path = Path(path)
    if path.suffix.lower() == ".safetensors" or not path.is_file() or \
            path.suffix.lower() not in WEIGHT_SUFFIXES:
        return _strip_wrappers(read_weights(path))
    loaded = torch_load(path, what="weights file")
    from_ema = False
    if isinstance(loaded, Mapping) and not _all_tensors(loaded):
        for key in STATE_KEYS:
            if isinstance(loaded.get(key), Mapping):
                loaded, from_ema = loaded[key], key == "model_ema"
                break
    state = _state_dict(loaded, path)
    if from_ema:  # torch.optim.swa_utils.AveragedModel's counter is not a weight
        state.pop("n_averaged", None)
    return _strip_wrappers(state)


def _all_tensors(mapping: Mapping) -> bool:
    return bool(mapping) and all(isinstance(v, torch.Tensor) for v in mapping.values())


def _strip_wrappers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    changed = True
    while changed and state:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(name.startswith(prefix) for name in state):
                state = {name[len(prefix):]: t for name, t in state.items()}
                changed = True
    return state
