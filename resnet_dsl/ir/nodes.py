"""The IR's operations: one class per op, and everything the compiler knows about it.

A node has a unique dotted name that follows the spec (`layer1.0.conv1`, torchvision's
names for torchvision-family specs), its inputs in order, the span of the statement that
made it and the call sites it was instantiated through (`trace`), its place in the
network (section, stage, block, and `path`: its module path inside the block) and, once
the passes have run, its output shape, parameter count and MACs.

Each class is the one place for its op (STYLE.md, "one place per operation"):
  words       how the language spells it: `{word: (Param, ...)}`, in signature order
  from_call   a bound call of one of its words -> (node class, attributes), range-checked
  arity       how many inputs it reads (None: two or more)
  infer       its output shape from its inputs' shapes (raises ShapeError with a span)
  cost        its (parameters, MACs) for one image
  describe    its printed form (`rnetc ir`, summaries, diagrams)
The torch backend maps each op to PyTorch in one table (`backends/torch/ops.py`).
`check_registry()` runs at import: an op without a rule is an import error, never a
silent zero.
"""

from __future__ import annotations

import math
import typing
from typing import Annotated, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from resnet_dsl.errors import Diagnostic, RnetError, Span, with_trace
from resnet_dsl.ir.signature import GLOBAL, REQUIRED, GlobalFlag, Param, format_shape

Shape = tuple[int, ...]
"""(C, H, W) for feature maps, (F,) after `flatten`."""

Pair = tuple[int, int]


class BoundCall(Protocol):
    """A layer call with its arguments bound to a word's signature (frontend/layers.py)."""

    value: dict[str, object]

    def fail(self, code: str, message: str, key: str | None = None) -> RnetError: ...
    def positive(self, *keys: str) -> None: ...
    def positive_pair(self, key: str) -> None: ...
    def limit(self, value: int, limit: str, what: str, key: str) -> None: ...


class ShapeError(Exception):
    """A shape rule's verdict on a node: carries the located diagnostic."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def node_error(node: NodeBase, code: str, message: str, help: str | None = None) -> Diagnostic:
    """A diagnostic at the statement that made `node`, through its block call sites."""
    return with_trace(Diagnostic(code, message, node.span, help), node.trace)


def conv_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """torch.nn.Conv2d's output size (may be < 1: the caller reports it)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape, including the ceil-mode rule that the last window
    must start inside the input or its left padding."""
    numerator = size + 2 * padding - (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _pair_text(p: Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


_RULES = ("infer", "cost", "describe")
NODE_TYPES: dict[str, type[NodeBase]] = {}
"""op -> node class, in definition order (the order of the language's layer table)."""


def construct(cls: type[BaseModel], values: dict):
    """An instance of `cls` from values already checked: pydantic's `model_construct`,
    less its per-field alias and default lookups (lowering makes thousands of these).
    Fields keep their declared order; list defaults are fresh lists."""
    recipe = cls.__dict__.get("_trusted_recipe")
    if recipe is None:  # once per class: every field in order, its factory, what is required
        template = {name: (None if info.is_required() or info.default_factory else info.default)
                    for name, info in cls.model_fields.items()}
        factories = tuple((name, info.default_factory)
                          for name, info in cls.model_fields.items() if info.default_factory)
        required = frozenset(n for n, info in cls.model_fields.items() if info.is_required())
        recipe = (template, factories, required)
        type.__setattr__(cls, "_trusted_recipe", recipe)
    template, factories, required = recipe
    missing = required - values.keys()
    if missing:
        raise TypeError(f"{cls.__name__} needs {', '.join(sorted(missing))}")
    if not values.keys() <= template.keys():
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(values.keys() - template.keys()))}")
    data = template.copy()  # declared order, defaults in place
    data.update(values)
    for name, factory in factories:
        if name not in values:
            data[name] = factory()
    node = cls.__new__(cls)
    object.__setattr__(node, "__dict__", data)
    object.__setattr__(node, "__pydantic_fields_set__", set(values))
    object.__setattr__(node, "__pydantic_extra__", None)
    object.__setattr__(node, "__pydantic_private__", None)
    return node


class NodeBase(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False, defer_build=True)

    OP: ClassVar[str] = ""  # the class's op, set by check_registry (`Conv.OP == "conv"`)
    arity: ClassVar[int | None] = 1
    words: ClassVar[dict[str, tuple[Param, ...]]] = {}
    starts_line: ClassVar[bool] = True  # a diagram line starts with it (bn, relu join one)
    own_scope: ClassVar[bool] = False   # only in a block's own layers (E307 elsewhere)

    name: str
    inputs: list[str] = Field(default_factory=list)
    span: Span | None = None
    trace: list[Span] = Field(default_factory=list)
    section: Literal["stem", "body", "head"] = "body"
    stage: str | None = None
    block: str | None = None
    path: tuple[str, ...] = ()  # module path inside its block: ("downsample", "0"); () outside
    shape: Shape | None = None
    params: int = 0
    macs: int = 0

    def __setattr__(self, name: str, value) -> None:
        # The passes set shape, params and macs on every node: a declared field is stored
        # as pydantic stores it without assignment validation, minus its handler lookups.
        if name in type(self).__pydantic_fields__:
            self.__dict__[name] = value
            self.__pydantic_fields_set__.add(name)
        else:
            super().__setattr__(name, value)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "op" in cls.__dict__.get("__annotations__", {}):
            NODE_TYPES[cls.__name__] = cls  # re-keyed by op in check_registry

    @classmethod
    def trusted(cls, **values) -> NodeBase:
        """A node from values already checked (an op's `from_call`): pydantic's
        `model_construct`, less its per-field alias and default lookups, which were most
        of lowering's time (a 1001-layer net makes 3,340 nodes). Fields keep their
        declared order; list defaults are fresh lists."""
        return construct(cls, values)

    # -- the rules every op defines ---------------------------------------------------
    @classmethod
    def from_call(cls, word: str, call: BoundCall) -> tuple[type[NodeBase], dict]:
        """The node a call of `word` makes, as (class, attributes); raises for bad values."""
        return cls, {}

    def infer(self, shapes: list[Shape]) -> Shape:
        raise NotImplementedError

    def cost(self, shapes: list[Shape]) -> tuple[int, int]:
        raise NotImplementedError

    def describe(self, in_channels: int | None = None) -> str:
        raise NotImplementedError

    def label(self, in_channels: int | None = None) -> str:
        """Its text on a diagram: `describe` with a real arrow."""
        return self.describe(in_channels).replace("->", "→")


def _free(self: NodeBase, shapes: list[Shape]) -> tuple[int, int]:
    """No parameters, no multiply-accumulates."""
    return 0, 0


def _same_shape(self: NodeBase, shapes: list[Shape]) -> Shape:
    return shapes[0]


def _probability(cls, word: str, call: BoundCall):
    """`dropout P`, `drop_path P`: a probability in [0, 1)."""
    p = call.value["p"]
    if not 0 <= p < 1:
        raise call.fail("E203", f"{word} probability must be in [0, 1), got {p}", "p")
    return cls, {"p": p}


def _spatial(node: NodeBase, shape: Shape, what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(node_error(
            node, "E305", f"{what} needs a CxHxW feature map, but its input is flat ({shape[0]})",
            "move it before `flatten`"))
    return shape  # type: ignore[return-value]


def _check_size(node: NodeBase, before: tuple[int, int, int], size: tuple[int, ...]) -> None:
    if min(size) < 1:
        raise ShapeError(node_error(
            node, "E304", f"the feature map collapses: this layer turns {format_shape(before)} into "
            f"{'x'.join(str(max(s, 0)) for s in size)}",
            "use a larger input (--input CxHxW), or fewer stride-2 layers"))


def _groups_help(c: int, out: int, groups: int) -> str:
    g = math.gcd(c, out)
    fits = [d for d in range(1, min(g, 4 * groups) + 1) if g % d == 0]
    below = max(d for d in fits if d <= groups)
    above = [d for d in fits if d > groups]
    options = [below] + above[:1]
    return " or ".join(f"groups={d}" for d in options) + " would fit"


# -- layers ------------------------------------------------------------------------------

class InputNode(NodeBase):
    op: Literal["input"] = "input"
    arity: ClassVar[int | None] = 0
    channels: int
    size: Pair

    def infer(self, shapes: list[Shape]) -> Shape:
        return (self.channels, *self.size)

    cost = _free

    def describe(self, in_channels: int | None = None) -> str:
        return "input"


_CONV = (
    Param("kernel", "pair", REQUIRED, True, "kernel size, e.g. 3x3"),
    Param("out", "int", REQUIRED, True, "output channels"),
    Param("stride", "pair", 1),
    Param("padding", "pair", None, False, "default: dilation * (kernel - 1) // 2"),
    Param("dilation", "pair", 1),
    Param("groups", "int", 1),
    Param("bias", "bool", False),
    Param("ws", "float", 0.0, False, "weight standardisation's eps (0: off; BiT: 1e-8)"),
)


class Conv(NodeBase):
    """A 2-D convolution. With `ws=EPS` it is weight-standardised (Qiao et al. 2019; BiT,
    Kolesnikov et al. 2020; timm's StdConv2d): each output filter's weights are normalised
    to zero mean and unit variance, EPS inside the root, before the convolution. The
    parameters and MACs are a plain conv's."""

    op: Literal["conv"] = "conv"
    words: ClassVar = {"conv": _CONV}
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = False
    ws_eps: float = 0.0  # > 0: weight-standardised (`ws=`)

    @classmethod
    def from_call(cls, word, call):
        v = call.value
        call.positive("out", "groups")
        if v["ws"] < 0:
            raise call.fail("E203", f"ws is the weight standardisation's eps (0: off), got "
                            f"{v['ws']}", "ws")
        call.limit(v["out"], "max_channels", "channels", "out")
        for key in ("kernel", "stride", "dilation"):
            call.positive_pair(key)
            call.limit(max(v[key]), "max_spatial", key, key)
        kernel, dilation, padding = v["kernel"], v["dilation"], v["padding"]
        if padding is None:
            padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
        elif min(padding) < 0:
            raise call.fail("E203", f"padding must be at least 0, got {_show(padding)}", "padding")
        call.limit(max(padding), "max_spatial", "padding", "padding")
        return cls, dict(out_channels=v["out"], kernel=kernel, stride=v["stride"], padding=padding,
                         dilation=dilation, groups=v["groups"], bias=v["bias"],
                         **({"ws_eps": float(v["ws"])} if v["ws"] else {}))

    def infer(self, shapes):
        c, h, w = _spatial(self, shapes[0], "`conv`")
        if c % self.groups or self.out_channels % self.groups:
            raise ShapeError(node_error(
                self, "E303", f"groups={self.groups} must divide both the input channels ({c}) "
                f"and the output channels ({self.out_channels})",
                _groups_help(c, self.out_channels, self.groups)))
        size = tuple(conv_size(s, k, st, p, d) for s, k, st, p, d in
                     zip((h, w), self.kernel, self.stride, self.padding, self.dilation))
        _check_size(self, (c, h, w), size)
        return (self.out_channels, *size)

    def cost(self, shapes):
        cin_per_group = shapes[0][0] // self.groups
        weights = self.out_channels * cin_per_group * self.kernel[0] * self.kernel[1]
        params = weights + (self.out_channels if self.bias else 0)
        return params, weights * math.prod(self.shape[1:])  # type: ignore[index]

    def describe(self, in_channels=None):
        text = f"conv {self.kernel[0]}x{self.kernel[1]}"
        if self.stride != (1, 1):
            text += f"/{_pair_text(self.stride)}"
        expected_pad = tuple(d * (k - 1) // 2 for k, d in zip(self.kernel, self.dilation))
        if self.padding != expected_pad:
            text += f" pad {_pair_text(self.padding)}"
        if self.dilation != (1, 1):
            text += f" dil {_pair_text(self.dilation)}"
        text += f", {in_channels}->{self.out_channels}" if in_channels else f", {self.out_channels}"
        if self.groups != 1:
            text += f", groups {self.groups}"
        if self.bias:
            text += ", bias"
        if self.ws_eps:
            text += f", ws {self.ws_eps:g}"
        return text


class BatchNorm(NodeBase):
    op: Literal["bn"] = "bn"
    words: ClassVar = {"bn": (Param("eps", "float", 1e-5), Param("momentum", "float", 0.1))}
    starts_line: ClassVar[bool] = False
    eps: float = 1e-5
    momentum: float = 0.1

    @classmethod
    def from_call(cls, word, call):
        v = call.value
        if v["eps"] <= 0:
            raise call.fail("E203", "eps must be positive", "eps")
        if not 0 <= v["momentum"] <= 1:
            raise call.fail("E203", "momentum must be between 0 and 1", "momentum")
        return cls, dict(eps=v["eps"], momentum=v["momentum"])

    infer = _same_shape

    def cost(self, shapes):
        return 2 * shapes[0][0], 0  # affine weight and bias; running statistics are buffers

    def describe(self, in_channels=None):
        return "bn"


ActKind = Literal["relu", "relu6", "leaky_relu", "silu", "gelu", "sigmoid", "tanh"]


class Activation(NodeBase):
    op: Literal["act"] = "act"
    words: ClassVar = {**{kind: () for kind in ("relu", "relu6", "silu", "gelu", "sigmoid", "tanh")},
                       "leaky_relu": (Param("slope", "float", 0.01, True),)}
    starts_line: ClassVar[bool] = False
    kind: ActKind = "relu"
    slope: float = 0.01  # leaky_relu only

    @classmethod
    def from_call(cls, word, call):
        return cls, {"kind": word, **({"slope": call.value["slope"]} if word == "leaky_relu" else {})}

    infer = _same_shape
    cost = _free

    def describe(self, in_channels=None):
        return f"leaky_relu {self.slope:g}" if self.kind == "leaky_relu" else self.kind


_POOL = (
    Param("kernel", "kernel", REQUIRED, True, "window size, e.g. 3x3, or `global`"),
    Param("stride", "pair", None, False, "default: the kernel size"),
    Param("padding", "pair", 0),
    Param("ceil", "bool", False, False, "ceil_mode"),
)


class Pool(NodeBase):
    op: Literal["pool"] = "pool"
    words: ClassVar = {
        "maxpool": _POOL,
        "avgpool": _POOL + (Param("count_pad", "bool", True, False, "count_include_pad"),),
    }
    kind: Literal["max", "avg"]
    kernel: Pair
    stride: Pair
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True  # avg only

    @classmethod
    def from_call(cls, word, call):
        v = call.value
        kind = "max" if word == "maxpool" else "avg"
        kernel = v["kernel"]
        if isinstance(kernel, GlobalFlag):
            return GlobalPool, {"kind": kind}
        call.positive_pair("kernel")
        stride = v["stride"] if v["stride"] is not None else kernel
        if v["stride"] is not None:
            call.positive_pair("stride")
        padding = v["padding"]
        if min(padding) < 0 or any(2 * p > k for p, k in zip(padding, kernel)):
            raise call.fail("E203", f"pool padding must be between 0 and half the kernel, got "
                            f"{_show(padding)} for kernel {_show(kernel)}", "padding")
        extra = {"count_include_pad": v["count_pad"]} if kind == "avg" else {}
        return cls, dict(kind=kind, kernel=kernel, stride=stride, padding=padding,
                         ceil_mode=v["ceil"], **extra)

    def infer(self, shapes):
        c, h, w = _spatial(self, shapes[0], f"`{self.kind}pool`")
        size = tuple(pool_size(s, k, st, p, self.ceil_mode) for s, k, st, p in
                     zip((h, w), self.kernel, self.stride, self.padding))
        _check_size(self, (c, h, w), size)
        return (c, *size)

    cost = _free

    def describe(self, in_channels=None):
        text = f"{self.kind}pool {self.kernel[0]}x{self.kernel[1]}"
        if self.stride != self.kernel:
            text += f"/{_pair_text(self.stride)}"
        if self.padding != (0, 0):
            text += f" pad {_pair_text(self.padding)}"
        if self.ceil_mode:
            text += " ceil"
        if self.kind == "avg" and not self.count_include_pad:
            text += " excl-pad"
        return text


class GlobalPool(NodeBase):
    """`maxpool global` / `avgpool global` (made by Pool.from_call): C x 1 x 1."""

    op: Literal["global_pool"] = "global_pool"
    kind: Literal["max", "avg"]

    def infer(self, shapes):
        c, _, _ = _spatial(self, shapes[0], "a global pool")
        return (c, 1, 1)

    cost = _free

    def describe(self, in_channels=None):
        return f"{self.kind}pool global"


class Dropout(NodeBase):
    op: Literal["dropout"] = "dropout"
    words: ClassVar = {"dropout": (Param("p", "float", REQUIRED, True, "drop probability, 0 <= p < 1"),)}
    starts_line: ClassVar[bool] = False
    p: float

    from_call = classmethod(_probability)
    infer = _same_shape
    cost = _free

    def describe(self, in_channels=None):
        return f"{self.OP} {self.p:g}"


class DropPath(NodeBase):
    """Stochastic depth (Huang et al. 2016), timm's `drop_path`: in training each sample's
    value is zeroed with probability p and the others scaled by 1/(1-p); in eval it is
    the identity. Written on a residual branch, before `add`."""

    op: Literal["drop_path"] = "drop_path"
    words: ClassVar = {"drop_path": (Param("p", "float", REQUIRED, True,
                                           "drop probability per sample, 0 <= p < 1"),)}
    starts_line: ClassVar[bool] = False
    p: float

    from_call = classmethod(_probability)
    infer = _same_shape
    cost = _free

    def describe(self, in_channels=None):
        return f"{self.OP} {self.p:g}"


class Identity(NodeBase):
    """The value itself: a named no-op (a placeholder that keeps a `Sequential`'s indices)."""

    op: Literal["identity"] = "identity"
    words: ClassVar = {"identity": ()}
    starts_line: ClassVar[bool] = False

    infer = _same_shape
    cost = _free

    def describe(self, in_channels=None):
        return "identity"


class Flatten(NodeBase):
    op: Literal["flatten"] = "flatten"
    words: ClassVar = {"flatten": ()}
    starts_line: ClassVar[bool] = False

    def infer(self, shapes):
        return (math.prod(shapes[0]),)

    cost = _free

    def describe(self, in_channels=None):
        return "flatten"


class Linear(NodeBase):
    op: Literal["fc"] = "fc"
    words: ClassVar = {"fc": (Param("out", "int", REQUIRED, True, "output features"),
                              Param("bias", "bool", True))}
    out_features: int
    bias: bool = True

    @classmethod
    def from_call(cls, word, call):
        call.positive("out")
        call.limit(call.value["out"], "max_channels", "features", "out")
        return cls, dict(out_features=call.value["out"], bias=call.value["bias"])

    def infer(self, shapes):
        shape = shapes[0]
        if len(shape) != 1:
            raise ShapeError(node_error(
                self, "E305", f"`fc` needs a flat input, but its input is {format_shape(shape)}",
                "add `flatten` before it" + ("" if shape[1:] == (1, 1) else
                                             " (usually after `avgpool global`)")))
        return (self.out_features,)

    def cost(self, shapes):
        weights = shapes[0][0] * self.out_features
        return weights + (self.out_features if self.bias else 0), weights

    def describe(self, in_channels=None):
        text = f"fc {in_channels}->{self.out_features}" if in_channels else f"fc {self.out_features}"
        return text if self.bias else text + ", no bias"


class Blur(NodeBase):
    """Anti-aliased downsampling (Zhang 2019), timm's BlurPool2d: a fixed binomial
    `size` x `size` filter applied to each channel (a depthwise conv with no parameters;
    its filter is not in the state dict), reflect padding, then `stride`."""

    op: Literal["blur"] = "blur"
    words: ClassVar = {"blur": (Param("stride", "int", 2, False, "downsampling factor"),
                                Param("size", "int", 3, False, "filter size (binomial)"))}
    stride: int = 2
    size: int = 3

    @property
    def padding(self) -> int:
        return ((self.stride - 1) + (self.size - 1)) // 2  # timm's get_padding

    @classmethod
    def from_call(cls, word, call):
        call.positive("stride")
        if call.value["size"] < 2:
            raise call.fail("E203", f"blur's size must be at least 2, got {call.value['size']}",
                            "size")
        return cls, {"stride": call.value["stride"], "size": call.value["size"]}

    def infer(self, shapes):
        c, h, w = _spatial(self, shapes[0], "`blur`")
        if min(h, w) <= self.padding:
            raise ShapeError(node_error(
                self, "E304", f"`blur` needs more than {self.padding} pixels to reflect, got "
                f"{format_shape(shapes[0])}", "use a larger input (--input CxHxW)"))
        size = tuple(conv_size(s, self.size, self.stride, self.padding) for s in (h, w))
        _check_size(self, (c, h, w), size)
        return (c, *size)

    def cost(self, shapes):
        return 0, shapes[0][0] * self.size * self.size * math.prod(self.shape[1:])  # type: ignore[index]

    def describe(self, in_channels=None):
        return f"blur {self.size}x{self.size}/{self.stride}"


class ChannelConv(NodeBase):
    """ECA's 1-D convolution across the channels of a C x 1 x 1 value (Wang et al. 2020):
    each channel's gate sees its `kernel` neighbours; no bias, zero padding."""

    op: Literal["channel_conv"] = "channel_conv"
    words: ClassVar = {"channel_conv": (Param("kernel", "int", REQUIRED, True,
                                              "odd kernel size across the channels"),)}
    kernel: int

    @classmethod
    def from_call(cls, word, call):
        k = call.value["kernel"]
        if k < 1 or k % 2 == 0:
            raise call.fail("E203", f"channel_conv's kernel must be odd and positive, got {k}",
                            "kernel")
        return cls, {"kernel": k}

    def infer(self, shapes):
        shape = shapes[0]
        if len(shape) != 3 or shape[1:] != (1, 1):
            raise ShapeError(node_error(
                self, "E305", f"`channel_conv` needs a C x 1 x 1 input, got {format_shape(shape)}",
                "put `avgpool global` before it"))
        return shape

    def cost(self, shapes):
        return self.kernel, self.kernel * shapes[0][0]

    def describe(self, in_channels=None):
        return f"channel_conv {self.kernel}"


class GroupNorm(NodeBase):
    """GroupNorm (Wu & He 2018): statistics over groups of channels, per image."""

    op: Literal["groupnorm"] = "groupnorm"
    words: ClassVar = {"groupnorm": (
        Param("groups", "int", REQUIRED, True, "number of channel groups"),
        Param("eps", "float", 1e-5),
    )}
    starts_line: ClassVar[bool] = False
    groups: int
    eps: float = 1e-5

    @classmethod
    def from_call(cls, word, call):
        call.positive("groups")
        if call.value["eps"] <= 0:
            raise call.fail("E203", "eps must be positive", "eps")
        return cls, dict(groups=call.value["groups"], eps=call.value["eps"])

    def infer(self, shapes):
        c, _, _ = _spatial(self, shapes[0], "`groupnorm`")
        if c % self.groups:
            fits = [d for d in range(1, c + 1) if c % d == 0]
            near = sorted(fits, key=lambda d: (abs(d - self.groups), d))[:2]
            raise ShapeError(node_error(
                self, "E303", f"groupnorm's {self.groups} groups must divide the channels ({c})",
                " or ".join(f"groupnorm {d}" for d in sorted(near)) + " would fit"))
        return shapes[0]

    def cost(self, shapes):
        return 2 * shapes[0][0], 0

    def describe(self, in_channels=None):
        return f"groupnorm {self.groups}"


class Pad(NodeBase):
    """Constant padding of the spatial sides (nn.ConstantPad2d): `pad 1` adds one pixel
    of `value` on every side (BiT's stem pads once, then max-pools without padding)."""

    op: Literal["pad"] = "pad"
    words: ClassVar = {"pad": (Param("size", "pair", REQUIRED, True, "pixels on each side: 1, 1x2"),
                               Param("value", "float", 0.0))}
    starts_line: ClassVar[bool] = False
    size: Pair
    value: float = 0.0

    @classmethod
    def from_call(cls, word, call):
        size = call.value["size"]
        if min(size) < 0:
            raise call.fail("E203", f"pad size must be at least 0, got {_show(size)}", "size")
        call.limit(max(size), "max_spatial", "padding", "size")
        return cls, {"size": size, "value": float(call.value["value"])}

    def infer(self, shapes):
        c, h, w = _spatial(self, shapes[0], "`pad`")
        return (c, h + 2 * self.size[0], w + 2 * self.size[1])

    cost = _free

    def describe(self, in_channels=None):
        text = f"pad {_pair_text(self.size)}"
        return text if self.value == 0 else f"{text} value {self.value:g}"


class LayerNorm(NodeBase):
    """LayerNorm over the channels of each pixel, with a learned per-channel weight and
    bias (ConvNeXt; timm's LayerNorm2d on N x C x H x W, LayerNorm on N x H x W x C: the
    same function of the values, so one op serves both memory layouts)."""

    op: Literal["layernorm"] = "layernorm"
    words: ClassVar = {"layernorm": (Param("eps", "float", 1e-6),)}
    starts_line: ClassVar[bool] = False
    eps: float = 1e-6

    @classmethod
    def from_call(cls, word, call):
        if not call.value["eps"] > 0:
            raise call.fail("E203", "eps must be positive", "eps")
        return cls, {"eps": call.value["eps"]}

    infer = _same_shape

    def cost(self, shapes):
        return 2 * shapes[0][0], 0

    def describe(self, in_channels=None):
        return "layernorm"


class LayerScale(NodeBase):
    """A learned per-channel scale (CaiT's and ConvNeXt's layer scale, Touvron et al. 2021):
    x * gamma, gamma of shape C, initialised to `init` (ConvNeXt: 1e-6). Its parameter is
    the block's own attribute, as timm names it (`stages.0.blocks.0.gamma`)."""

    op: Literal["layer_scale"] = "layer_scale"
    words: ClassVar = {"layer_scale": (Param("init", "float", 1e-6, False,
                                             "the scale's initial value"),)}
    starts_line: ClassVar[bool] = False
    own_scope: ClassVar[bool] = True
    init: float = 1e-6

    @classmethod
    def from_call(cls, word, call):
        return cls, {"init": float(call.value["init"])}

    infer = _same_shape

    def cost(self, shapes):
        return shapes[0][0], 0

    def describe(self, in_channels=None):
        return "layer_scale"


def _channel_groups(node: NodeBase, shape: Shape, what: str) -> int:
    c = shape[0]
    if c % node.groups:  # type: ignore[attr-defined]
        raise ShapeError(node_error(
            node, "E303", f"{what} splits the channels into {node.groups} groups, but {c} "  # type: ignore[attr-defined]
            f"channels do not divide by {node.groups}",  # type: ignore[attr-defined]
            "the layer before it must make a multiple of the groups"))
    return c // node.groups  # type: ignore[attr-defined]


class GroupSoftmax(NodeBase):
    """Softmax across branches stacked along the channels: the C channels are `groups`
    groups of C / groups, and each position's `groups` values (one per group) are
    normalised to sum to 1 (SK's and ResNeSt's attention over paths, radix 2+; timm's
    RadixSoftmax with cardinality 1, SelectiveKernelAttn)."""

    op: Literal["group_softmax"] = "group_softmax"
    words: ClassVar = {"softmax": (Param("groups", "int", REQUIRED, True,
                                         "how many branches the channels stack (2 or more)"),)}
    starts_line: ClassVar[bool] = False
    groups: int

    @classmethod
    def from_call(cls, word, call):
        if call.value["groups"] < 2:
            raise call.fail("E203", f"softmax across {call.value['groups']} branch: it needs 2 "
                            "or more (a single gate is `sigmoid`)", "groups")
        call.limit(call.value["groups"], "max_channels", "groups", "groups")
        return cls, {"groups": call.value["groups"]}

    def infer(self, shapes):
        _channel_groups(self, shapes[0], "`softmax`")
        return shapes[0]

    cost = _free

    def describe(self, in_channels=None):
        return f"softmax across {self.groups}"


class GroupSum(NodeBase):
    """The sum of branches stacked along the channels: `groups` groups of C / groups
    channels, added up (SK's and ResNeSt's sum over paths): C / groups channels out."""

    op: Literal["group_sum"] = "group_sum"
    words: ClassVar = {"group_sum": (Param("groups", "int", REQUIRED, True,
                                           "how many branches the channels stack"),)}
    groups: int

    @classmethod
    def from_call(cls, word, call):
        call.positive("groups")
        call.limit(call.value["groups"], "max_channels", "groups", "groups")
        return cls, {"groups": call.value["groups"]}

    def infer(self, shapes):
        return (_channel_groups(self, shapes[0], "`group_sum`"), *shapes[0][1:])

    cost = _free

    def describe(self, in_channels=None):
        return f"sum of {self.groups}"


# -- joins: nodes with several inputs ----------------------------------------------------

class Add(NodeBase):
    """The residual addition: inputs are (residual branch, shortcut), of equal shapes.

    Lowering makes it read (branch, block input); the shortcut pass replaces the second
    input with the shortcut the stage's policy asks for and checks the join (E301)."""

    op: Literal["add"] = "add"
    arity: ClassVar[int | None] = 2
    words: ClassVar = {"add": (Param("proj_bn", "bool", True, False,
                                     "BN after a projection shortcut's conv"),
                               Param("proj_gn", "int", 0, False,
                                     "GroupNorm groups after the projection's conv instead of "
                                     "BN (0: BN)"),
                               Param("proj_named", "bool", False, False,
                                     "name the projection's modules pool/conv/bn/norm (timm's "
                                     "DownsampleConv, DownsampleAvg, RegNet) instead of 0, 1, 2"),
                               Param("proj_ws", "float", 0.0, False,
                                     "weight-standardise the projection's conv with this eps "
                                     "(0: a plain conv)"))}

    @classmethod
    def from_call(cls, word, call):
        return cls, {}  # the `proj_*` options belong to the block: frontend/blocks.py reads them

    infer = _same_shape  # the shortcut pass checks that the two inputs agree
    cost = _free

    def describe(self, in_channels=None):
        return "add"


class Mul(NodeBase):
    """Elementwise product: (x, gate), where the gate is x's shape or C x 1 x 1 (SE, ECA)."""

    op: Literal["mul"] = "mul"
    arity: ClassVar[int | None] = 2
    words: ClassVar = {"mul": ()}  # a marker: frontend/blocks.py joins the open `branch`

    def infer(self, shapes):
        x, gate = shapes
        if gate != x and not (len(x) == 3 and gate == (x[0], 1, 1)):
            raise ShapeError(node_error(
                self, "E305", f"a gate of shape {format_shape(gate)} cannot scale "
                f"{format_shape(x)}", f"the gate must be {format_shape(x)} or {x[0]}x1x1"))
        return x

    cost = _free

    def describe(self, in_channels=None):
        return "mul"


class Slice(NodeBase):
    """Part `part` of `parts` equal parts of a value's channels (made by `split`)."""

    op: Literal["slice"] = "slice"
    part: int
    parts: int

    def infer(self, shapes):
        c, h, w = _spatial(self, shapes[0], "`split`")
        if c % self.parts:
            fits = [d for d in range(2, min(c, 64) + 1) if c % d == 0][:4]
            raise ShapeError(node_error(
                self, "E303", f"`split {self.parts}` needs channels that divide into "
                f"{self.parts} equal parts, got {c}",
                ("split " + " or ".join(map(str, fits)) + " would fit") if fits else None))
        return (c // self.parts, h, w)

    cost = _free

    @property
    def channels(self) -> tuple[int, int]:
        """(start, stop) of its channels in the input."""
        width = self.shape[0] if self.shape else 0
        return self.part * width, (self.part + 1) * width

    def describe(self, in_channels=None):
        return f"part {self.part + 1}/{self.parts}"


class Sum(NodeBase):
    """The sum of two values of one shape (`add_previous` in a `split`: Res2Net's
    hierarchical connection, a part plus the previous part's result)."""

    op: Literal["sum"] = "sum"
    arity: ClassVar[int | None] = 2

    def infer(self, shapes):
        a, b = shapes
        if a != b:
            raise ShapeError(node_error(
                self, "E305", f"`add_previous` adds the previous part's {format_shape(b)} to "
                f"{format_shape(a)}", "the parts must keep one shape up to `add_previous`"))
        return a

    cost = _free

    def describe(self, in_channels=None):
        return "add previous"


class Concat(NodeBase):
    """Channel concatenation of two or more CxHxW maps of equal H and W, in input order."""

    op: Literal["cat"] = "cat"
    arity: ClassVar[int | None] = None

    def infer(self, shapes):
        spatial = [_spatial(self, s, "a concatenation") for s in shapes]
        sizes = {s[1:] for s in spatial}
        if len(sizes) != 1:
            raise ShapeError(node_error(
                self, "E305", "a concatenation needs inputs of one size, got "
                + ", ".join(format_shape(s) for s in spatial)))
        return (sum(s[0] for s in spatial), *spatial[0][1:])

    cost = _free

    def describe(self, in_channels=None):
        return "cat"


class ZeroPad(NodeBase):
    """Option A shortcut: take every `stride`-th pixel, append zero channels."""

    op: Literal["zeropad"] = "zeropad"
    stride: int
    out_channels: int

    def infer(self, shapes):
        _, h, w = shapes[0]
        return (self.out_channels, -(-h // self.stride), -(-w // self.stride))

    cost = _free

    def describe(self, in_channels=None):
        return f"zeropad /{self.stride} -> {self.out_channels}"

    def label(self, in_channels=None):
        return f"zero-pad /{self.stride}, {in_channels}→{self.out_channels}"


Node = Annotated[
    InputNode | Conv | BatchNorm | Activation | Pool | GlobalPool | Dropout | DropPath | Identity
    | Flatten | Linear | Blur | ChannelConv | GroupNorm | Pad | LayerNorm | LayerScale | GroupSoftmax
    | GroupSum | Add | Mul | Slice | Sum | Concat | ZeroPad,
    Field(discriminator="op"),
]


def check_registry() -> None:
    """Every op class is in `Node`, under its op, and defines every rule (raises TypeError)."""
    union = typing.get_args(typing.get_args(Node)[0])
    classes = {cls.model_fields["op"].default: cls for cls in list(NODE_TYPES.values())}
    NODE_TYPES.clear()
    NODE_TYPES.update(classes)
    if set(union) != set(classes.values()):
        raise TypeError(f"ir.nodes.Node lists {sorted(c.__name__ for c in union)}, "
                        f"the op classes are {sorted(c.__name__ for c in classes.values())}")
    for op, cls in classes.items():
        cls.OP = op
        missing = [rule for rule in _RULES if getattr(cls, rule) is getattr(NodeBase, rule)]
        if missing:
            raise TypeError(f"op {op!r} ({cls.__name__}) has no {', '.join(missing)} rule")
        if cls.words and cls.from_call.__func__ is NodeBase.from_call.__func__ and any(cls.words.values()):
            raise TypeError(f"op {op!r} ({cls.__name__}) has arguments but no from_call")


check_registry()


def layer_words() -> dict[str, tuple[type[NodeBase], tuple[Param, ...]]]:
    """Every word of the language that makes a node: word -> (class, signature)."""
    return {word: (cls, params) for cls in NODE_TYPES.values() for word, params in cls.words.items()}


__all__ = ["GLOBAL", "NODE_TYPES", "REQUIRED", "BoundCall", "GlobalFlag", "Node", "NodeBase",
           "Param", "ShapeError", "Shape", "check_registry", "conv_size", "layer_words",
           "node_error", "pool_size"]
