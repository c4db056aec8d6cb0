"""The IR's node types: a small closed set of layer operations (pydantic models).

A node has a unique dotted name that follows the spec (`layer1.0.conv1`, torchvision's
names for torchvision-family specs), its inputs in order, the span of the statement that
made it and the call sites it was instantiated through (`trace`), its place in the
network (section, stage, block, part of the block) and, once the passes have run, its
output shape, parameter count and MACs. Nodes hold data only; passes compute.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from resnet_dsl.errors import Span

Shape = tuple[int, ...]
"""(C, H, W) for feature maps, (F,) after `flatten`."""

Pair = tuple[int, int]

Part = Literal["pre", "main", "shortcut", "post"]
"""Where a node sits in a residual block: before the fork point, on the residual
branch, on the shortcut, or after the addition."""


class NodeBase(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    name: str
    inputs: list[str] = Field(default_factory=list)
    span: Span | None = None
    trace: list[Span] = Field(default_factory=list)
    section: Literal["stem", "body", "head"] = "body"
    stage: str | None = None
    block: str | None = None
    part: Part | None = None
    shape: Shape | None = None
    params: int = 0
    macs: int = 0

    @property
    def scope(self) -> str:
        return self.name.rpartition(".")[0]

    @property
    def local_name(self) -> str:
        return self.name.rpartition(".")[2]


class InputNode(NodeBase):
    op: Literal["input"] = "input"
    channels: int
    size: Pair


class Conv(NodeBase):
    op: Literal["conv"] = "conv"
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = False


class BatchNorm(NodeBase):
    op: Literal["bn"] = "bn"
    eps: float = 1e-5
    momentum: float = 0.1


ActKind = Literal["relu", "relu6", "leaky_relu", "silu", "gelu", "sigmoid", "tanh"]


class Activation(NodeBase):
    op: Literal["act"] = "act"
    kind: ActKind = "relu"
    slope: float = 0.01  # leaky_relu only


class Pool(NodeBase):
    op: Literal["pool"] = "pool"
    kind: Literal["max", "avg"]
    kernel: Pair
    stride: Pair
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True  # avg only


class GlobalPool(NodeBase):
    op: Literal["global_pool"] = "global_pool"
    kind: Literal["max", "avg"]


class Dropout(NodeBase):
    op: Literal["dropout"] = "dropout"
    p: float


class Flatten(NodeBase):
    op: Literal["flatten"] = "flatten"


class Linear(NodeBase):
    op: Literal["fc"] = "fc"
    out_features: int
    bias: bool = True


class Add(NodeBase):
    """The residual addition: inputs are (residual branch, shortcut)."""

    op: Literal["add"] = "add"


class ZeroPad(NodeBase):
    """Option A shortcut: take every `stride`-th pixel, append zero channels."""

    op: Literal["zeropad"] = "zeropad"
    stride: int
    out_channels: int


Node = Annotated[
    InputNode | Conv | BatchNorm | Activation | Pool | GlobalPool | Dropout | Flatten | Linear | Add | ZeroPad,
    Field(discriminator="op"),
]

OPS: tuple[str, ...] = ("input", "conv", "bn", "act", "pool", "global_pool", "dropout",
                        "flatten", "fc", "add", "zeropad")
