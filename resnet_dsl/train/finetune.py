"""Fine-tuning: start from weights on disk, replace the head, freeze, give the head its rate.

The head is the network's own: the layers the spec writes in its `head { ... }` section
(IR nodes with `section == "head"`, after the last stage), whatever they are named. A
model given without a compiled network (`train(model=...)`) has as head its last
top-level child that holds parameters.

`fit_pretrained` compares a file's state dict with the model's. Every tensor of the
network whose name and shape are in the file is loaded; head tensors the file lacks,
or holds with another shape (1000 ImageNet classes for a 10-class network), start as
initialised; anything else that does not fit (a backbone tensor missing or of another
shape, a tensor the network does not have) is E805, listing the missing and the
unexpected names side by side and naming a known naming convention where one explains
them (a `model.` prefix, timm's `head.fc`, `downsample` indices).

`plan_freeze` resolves `--freeze`: `backbone` (all but the head) or the name of a layer,
block or stage (`layer3`, `layer3.1`, `conv1`): it and everything before it in network
order. Frozen parameters get requires_grad False (so no gradient and no optimiser state)
and frozen BatchNorms stay in eval mode: their running statistics do not move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from resnet_dsl.errors import Note, did_you_mean, error
from resnet_dsl.train.config import OptionError

BACKBONE = "backbone"
_SIDE_BY_SIDE_ROWS = 12


def head_modules(model: nn.Module, net=None) -> tuple[str, ...]:
    """Names of the model's top-level children that make up the head, in order.

    >>> from resnet_dsl.compiler import compile_network
    >>> from resnet_dsl.backends.torch import build_module
    >>> net = compile_network("specs/resnet18.rnet")
    >>> head_modules(build_module(net, device="meta"), net)
    ('avgpool', 'flatten', 'fc')
    """
    children = dict(model.named_children())
    if net is not None:
        names: list[str] = []
        for node in net.nodes.values():
            unit = node.stage or node.name
            if node.section == "head" and unit in children and unit not in names:
                names.append(unit)
        return tuple(names)
    with_params = [name for name, child in children.items() if any(True for _ in child.parameters())]
    return tuple(with_params[-1:])


def in_head(name: str, head: tuple[str, ...]) -> bool:
    return name.split(".", 1)[0] in head


def shape_text(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


@dataclass
class LoadReport:
    """What `fit_pretrained` took from a file."""

    source: str
    loaded: int
    new: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    def describe(self) -> str:
        """`loaded 318 tensors; new: fc.weight [10, 2048], fc.bias [10]`."""
        line = f"loaded {self.loaded:,} tensor{'s' if self.loaded != 1 else ''}"
        if not self.new:
            return line + " (all of the network's)"
        return line + "; new: " + ", ".join(f"{name} {shape_text(shape)}" for name, shape in self.new)


def fit_pretrained(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], *,
                   head: tuple[str, ...], source: str, network: str
                   ) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """The tensors of `state` to load into a model whose state dict is `expected`, and the
    report; E805 when anything outside the head does not fit.

    >>> e = {"conv.weight": torch.zeros(4, 3), "fc.weight": torch.zeros(10, 4)}
    >>> s = {"conv.weight": torch.ones(4, 3), "fc.weight": torch.ones(1000, 4)}
    >>> load, report = fit_pretrained(s, e, head=("fc",), source="w.pth", network="n")
    >>> sorted(load), report.describe()
    (['conv.weight'], 'loaded 1 tensor; new: fc.weight [10, 4]')
    """
    load: dict[str, torch.Tensor] = {}
    new: list[tuple[str, tuple[int, ...]]] = []
    missing: dict[str, tuple[int, ...]] = {}
    counters: dict[str, tuple[int, ...]] = {}
    reshaped: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    kinds: list[str] = []
    for name, want in expected.items():
        got = state.get(name)
        fits = got is not None and tuple(got.shape) == tuple(want.shape)
        if fits and got.is_floating_point() != want.is_floating_point():
            kinds.append(f"`{name}` is {got.dtype} in the file, the network needs {want.dtype}")
        elif fits:
            load[name] = got.to(want.dtype) if got.is_floating_point() else got
        elif in_head(name, head):
            new.append((name, tuple(want.shape)))
        elif got is None and name.endswith("num_batches_tracked"):
            counters[name] = tuple(want.shape)  # files from before torch 0.4.1 lack it: stays 0
        elif got is None:
            missing[name] = tuple(want.shape)
        else:
            reshaped[name] = (tuple(got.shape), tuple(want.shape))
    unexpected = {name: tuple(t.shape) for name, t in state.items() if name not in expected}
    if missing or reshaped or unexpected or kinds:
        missing = {n: s for n, s in expected_order(expected, {**missing, **counters})}
        raise _misfit(source, network, head, missing, unexpected, reshaped, kinds, dict(new))
    return load, LoadReport(source, len(load), new)


def expected_order(expected: dict, names: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(n, names[n]) for n in expected if n in names]


def _misfit(source, network, head, missing, unexpected, reshaped, kinds, new):
    def count(n: int, what: str) -> str:
        return f"{n} tensor{'s' if n != 1 else ''} {what}" if n else ""

    counts = [count(len(missing), "missing from the file"),
              count(len(unexpected), "in the file that the network does not have"),
              count(len(reshaped), "of another shape outside the head"),
              count(len(kinds), "of another kind")]
    message = f"{source} does not fit {network}: " + ", ".join(filter(None, counts))
    network_side = {**missing, **{n: want for n, (_, want) in reshaped.items()}, **new}
    file_side = {**unexpected, **{n: got for n, (got, _) in reshaped.items()}}
    pairs = renamings(network_side, file_side, loose=set(new))
    notes: list[Note] = []
    if missing or unexpected:
        # one row per missing name, beside the file's name for it where a convention says
        partner = {m: u for m, u, _ in pairs if m in missing and u in unexpected}
        rows = [(f"{m} {shape_text(s)}", f"{partner[m]} {shape_text(unexpected[partner[m]])}"
                 if m in partner else "") for m, s in missing.items()]
        paired = set(partner.values())
        rest = [f"{u} {shape_text(s)}" for u, s in unexpected.items() if u not in paired]
        free = [i for i, (_, b) in enumerate(rows) if not b]
        for i, text in zip(free, rest):
            rows[i] = (rows[i][0], text)
        rows += [("", text) for text in rest[len(free):]]
        shown = rows[:_SIDE_BY_SIDE_ROWS]
        width = max(len("missing from the file"), *(len(a) for a, _ in shown))
        notes.append(Note(None, f"{'missing from the file':<{width}}  |  in the file, not in the network"))
        notes += [Note(None, f"{a:<{width}}  |  {b}".rstrip()) for a, b in shown]
        if len(rows) > _SIDE_BY_SIDE_ROWS:
            more_l = sum(1 for a, _ in rows[_SIDE_BY_SIDE_ROWS:] if a)
            more_r = sum(1 for _, b in rows[_SIDE_BY_SIDE_ROWS:] if b)
            a = f"... {more_l} more" if more_l else ""
            b = f"... {more_r} more" if more_r else ""
            notes.append(Note(None, f"{a:<{width}}  |  {b}".rstrip()))
    for name, (got, want) in list(reshaped.items())[:_SIDE_BY_SIDE_ROWS]:
        notes.append(Note(None, f"`{name}` is {shape_text(got)} in the file, the network needs "
                                f"{shape_text(want)}"))
    if len(reshaped) > _SIDE_BY_SIDE_ROWS:
        notes.append(Note(None, f"... and {len(reshaped) - _SIDE_BY_SIDE_ROWS} more of another shape"))
    notes += [Note(None, k) for k in kinds[:_SIDE_BY_SIDE_ROWS]]
    found: dict[str, int] = {}
    for _, _, sentence in pairs:
        found[sentence] = found.get(sentence, 0) + 1
    notes += [Note(None, f"{s}: {n} tensor{'s' if n != 1 else ''}") for s, n in found.items()]
    head_words = ", ".join(head) if head else "none in this network"
    return error("E805", message, notes=notes,
                 help=f"--weights takes weights of this network (the same spec, --set and --input); "
                      f"only the head ({head_words}) may differ, and its tensors then start fresh")


_DOWNSAMPLE = re.compile(r"^(.*\.downsample\.)(\d+)(\..+)$")


def _convention(m: str, u: str) -> str | None:
    """The known convention by which the file's name `u` is the network's `m`, if any."""
    if u.endswith("." + m):
        prefix = u[: -len(m)]
        if prefix == "head." and m.startswith("fc."):
            return "the file names the classifier `head.fc` (timm), the network `fc` (torchvision)"
        return f"the file's names start with `{prefix}` (a wrapper module's), the network's do not"
    if m.endswith("." + u):
        prefix = m[: -len(u)]
        if prefix == "head." and u.startswith("fc."):
            return "the file names the classifier `fc` (torchvision), the network `head.fc` (timm)"
        return f"the network's names start with `{prefix}`, the file's do not"
    a, b = _DOWNSAMPLE.match(u), _DOWNSAMPLE.match(m)
    if a and b and a.group(1) == b.group(1) and a.group(3) == b.group(3):
        return ("`downsample` indices differ: a projection shortcut is downsample.0 (conv), "
                ".1 (bn) in torchvision (shortcut=proj), timm's ResNet-D has .1 (conv), .2 (bn) "
                "after a pool at .0 (shortcut=avgproj)")
    return None


def renamings(network_side: dict[str, tuple], file_side: dict[str, tuple],
              loose: set[str] = frozenset()) -> list[tuple[str, str, str]]:
    """(network name, file name, convention) for tensors of the same shape (any shape for
    the names in `loose`: a new head) whose names differ by a known convention; each name
    in one pair at most.

    >>> renamings({"fc.weight": (10, 4)}, {"head.fc.weight": (10, 4)})[0][2]
    'the file names the classifier `head.fc` (timm), the network `fc` (torchvision)'
    >>> renamings({"fc.weight": (2,)}, {"model.fc.weight": (2,)})[0][2]
    "the file's names start with `model.` (a wrapper module's), the network's do not"
    """
    pairs = []
    taken: set[str] = set()
    for m, m_shape in network_side.items():
        for u, u_shape in file_side.items():
            if u in taken or u == m or (u_shape != m_shape and m not in loose):
                continue
            sentence = _convention(m, u)
            if sentence:
                pairs.append((m, u, sentence))
                taken.add(u)
                break
    return pairs


def load_pretrained(model: nn.Module, path: str | Path, *, net=None, network: str | None = None
                    ) -> LoadReport:
    """Read `path` (any file `read_state_dict` takes) and load what fits into `model`;
    the rest keeps its initialisation. E805 for a file that does not fit."""
    from resnet_dsl.backends.torch.weights import read_state_dict

    state = read_state_dict(path)
    own = model.state_dict()
    name = network or (net.name if net is not None else type(model).__name__)
    load, report = fit_pretrained(state, own, head=head_modules(model, net), source=str(path),
                                  network=name)
    model.load_state_dict({**own, **load})
    return report


# -- freezing ------------------------------------------------------------------------------
@dataclass
class FreezePlan:
    """Which parameters train, which are frozen, and which BatchNorms keep their statistics."""

    spec: str | None
    frozen: frozenset[str]                 # parameter names
    norms: tuple[str, ...]                 # names of frozen norm modules (eval mode)
    head: tuple[str, ...]                  # head module names
    trainable: int                         # parameter counts (elements)
    total: int

    def head_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return [p for name, p in model.named_parameters() if in_head(name, self.head) and p.requires_grad]

    def describe(self, head_lr: float | None = None) -> str:
        what = f"trains {self.trainable:,} of {self.total:,} parameters"
        if self.spec == BACKBONE:
            what += f" (the head: {', '.join(self.head)}; the backbone frozen"
        elif self.spec:
            what += f" (frozen: everything up to and including {self.spec}"
        if self.spec:
            what += ", its BatchNorm statistics fixed)" if self.norms else ")"
        if head_lr is not None:
            what += f"; head learning rate {head_lr:g}"
        return what


def plan_freeze(model: nn.Module, spec: str | None, head: tuple[str, ...]) -> FreezePlan:
    """Resolve `--freeze` (None: nothing frozen) against the model; OptionError for a name
    the model does not have, or a freeze that would leave nothing to train."""
    modules = list(model.named_modules())
    frozen_modules: set[str] = set()
    if spec == BACKBONE:
        if not head:
            raise OptionError("--freeze backbone: this network has no head section to train")
        frozen_modules = {name for name, _ in modules if name and not in_head(name, head)}
    elif spec:
        names = [name for name, _ in modules]
        if spec not in names[1:]:
            top = [name for name, _ in model.named_children()]
            hint = did_you_mean(spec, names[1:])
            raise OptionError(f"--freeze {spec}: the network has no layer, block or stage of that "
                              f"name; give `backbone` or one of {', '.join(top)}"
                              + (f" ({hint})" if hint else ""))
        end = max(i for i, name in enumerate(names) if name == spec or name.startswith(spec + "."))
        frozen_modules = set(names[1:end + 1])
    frozen = set()
    for mname in frozen_modules:
        for pname, _ in dict(modules)[mname].named_parameters(recurse=False):
            frozen.add(f"{mname}.{pname}")
    norms = tuple(name for name, m in modules if name in frozen_modules
                  and isinstance(m, nn.modules.batchnorm._NormBase))
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    trainable = sum(p.numel() for name, p in params.items() if name not in frozen)
    if spec and trainable == 0:
        raise OptionError(f"--freeze {spec} freezes every parameter: nothing would train")
    return FreezePlan(spec, frozenset(frozen), norms, head, trainable, total)


def apply_freeze(model: nn.Module, plan: FreezePlan) -> list[nn.Module]:
    """Set requires_grad by the plan; return the frozen norm modules (to keep in eval mode)."""
    if plan.spec:
        for name, p in model.named_parameters():
            p.requires_grad_(name not in plan.frozen)
    modules = dict(model.named_modules())
    return [modules[name] for name in plan.norms if name in modules]


# -- resuming ------------------------------------------------------------------------------
RESUMED_OPTIONS = ("freeze", "head_lr")


def resume_settings(config, saved: dict, path: str) -> list[str]:
    """A resumed run trains what the run it continues trained: `--freeze` and `--head-lr`
    come from the checkpoint's options when the command leaves them out, and a command that
    gives other values is refused (OptionError). `--weights` is not read again: the
    checkpoint holds the weights. Returns notes for the user."""
    from resnet_dsl.train.config import option

    notes = []
    for name in RESUMED_OPTIONS:
        mine, theirs = getattr(config, name), saved.get(name)
        if mine is None and theirs is not None:
            setattr(config, name, theirs)
            notes.append(f"{option(name)} {theirs}, as the run being resumed")
        elif mine is not None and mine != theirs:
            was = f"{option(name)} {theirs}" if theirs is not None else f"no {option(name)}"
            raise OptionError(f"{option(name)} {mine}: {path} was trained with {was}; a resumed "
                              "run keeps the settings it started with")
    if config.weights is None:
        config.weights = saved.get("weights")
    return notes
