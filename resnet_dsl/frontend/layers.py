"""Lowering a layer call (`conv 3x3 64 stride=2`): bind it to its word's signature, let the
op's `from_call` check the values, and add the node.

No op is special here: the word -> node class table is the node classes' own
(`ir/nodes.py`), so a new layer needs no change in this file. Also here: evaluating a
call's argument values, which block calls share.
"""

from __future__ import annotations

from resnet_dsl.frontend import ast
from resnet_dsl.frontend.context import Ctx, Lowering
from resnet_dsl.frontend.evaluate import evaluate, fail, show
from resnet_dsl.frontend.signatures import GLOBAL, Arg, Kwarg, bind_layer, coerce
from resnet_dsl.ir.nodes import layer_words

NODE_WORDS = {word: cls for word, (cls, _) in layer_words().items()}
"""Layer word -> the node class that makes its node (`maxpool` -> Pool, ...)."""

# Names people carry over from PyTorch, Keras, Caffe and Darknet.
SYNONYMS = {
    "batchnorm": "bn", "batch_norm": "bn", "batchnorm2d": "bn", "bn2d": "bn",
    "conv2d": "conv", "convolutional": "conv", "convolution": "conv",
    "linear": "fc", "dense": "fc", "innerproduct": "fc", "connected": "fc",
    "maxpool2d": "maxpool", "avgpool2d": "avgpool", "max_pool": "maxpool",
    "avg_pool": "avgpool", "adaptiveavgpool2d": "avgpool global", "gap": "avgpool global",
    "globalavgpool": "avgpool global", "global_avg_pool": "avgpool global",
    "swish": "silu", "leakyrelu": "leaky_relu", "leaky": "leaky_relu", "elementwise": "add",
    "shortcut": "add", "residual": "add", "eltwise": "add", "group_norm": "groupnorm",
    "groupnorm2d": "groupnorm", "gn": "groupnorm", "droppath": "drop_path",
    "stochastic_depth": "drop_path", "drop_connect": "drop_path", "noop": "identity",
}


class Bound:
    """A call bound to its word's signature, with the range checks ops use (`BoundCall`)."""

    def __init__(self, lw: Lowering, bound: dict[str, Arg]) -> None:
        self.lw = lw
        self.value = {k: v for k, (v, _) in bound.items()}
        self.span = {k: s for k, (_, s) in bound.items()}

    def fail(self, code: str, message: str, key: str | None = None):
        return fail(code, message, self.span[key] if key else next(iter(self.span.values())))

    def positive(self, *keys: str) -> None:
        for key in keys:
            if self.value[key] < 1:
                raise fail("E203", f"{key} must be at least 1, got {self.value[key]}", self.span[key])

    def positive_pair(self, key: str) -> None:
        pair = self.value[key]
        if min(pair) < 1:
            raise fail("E203", f"{key} must be at least 1, got {show(pair)}", self.span[key])

    def limit(self, value: int, limit: str, what: str, key: str) -> None:
        self.lw.limit(value, limit, what, self.span[key])


def lower_layer(lw: Lowering, call: ast.Call, ctx: Ctx, bound: dict[str, Arg]) -> None:
    """Add the node a layer call makes, reading the current node."""
    lw.need_input(call.span)
    key = ("op", id(bound))
    entry = lw.memo.get(key)
    if entry is not None and entry[0] is bound:  # the same binding: the same op attributes
        cls, attrs = entry[1]
    else:
        cls, attrs = NODE_WORDS[call.name].from_call(call.name, Bound(lw, bound))
        lw.memo[key] = (bound, (cls, attrs))
    if cls.own_scope and (ctx.kind != "block" or ctx.prefix or ctx.block is None):
        raise fail("E307", f"`{call.name}` belongs in a residual block's own layers (its "
                   "parameter is the block's, as timm's `gamma`)", call.span,
                   "move it into the block that a `stage` repeats, outside named scopes")
    lw.emit(cls, call.name, call, ctx, **attrs)


def bind(lw: Lowering, call: ast.Call, ctx: Ctx) -> dict[str, Arg]:
    """The call's arguments evaluated and bound to its word's signature. The result
    depends only on the call and the values of the names its arguments read, so it is
    memoised on those (a failing call raises every time: only results are kept)."""
    names = lw.memo_names.get(id(call))
    if names is None:
        found: set[str] = set()
        for a in call.args:
            _value_names(a, found)
        for k in call.kwargs:
            _value_names(k.value, found)
        names = lw.memo_names[id(call)] = tuple(sorted(found))
    values = ctx.env.values
    try:
        key = (id(call), *[_typed(values.get(n, _UNSET)) for n in names])
        bound = lw.memo.get(key)
    except TypeError:  # an unhashable value: no memo
        key, bound = None, None
    if bound is None:
        args, kwargs = call_values(lw, call, ctx)
        bound = bind_layer(call.name, args, kwargs, call.span)
        if key is not None:
            lw.memo[key] = bound
    return bound


_UNSET = object()


def _typed(value: object) -> object:
    """A memo key part that tells 1, 1.0 and true apart (they are equal in Python)."""
    if isinstance(value, tuple):
        return (tuple, *[_typed(v) for v in value])
    return (type(value), value)


def _value_names(v: object, out: set[str]) -> None:
    """The names an argument's expression reads."""
    if isinstance(v, ast.Name):
        out.add(v.id)
    elif isinstance(v, ast.Binary):
        _value_names(v.left, out)
        _value_names(v.right, out)
    elif isinstance(v, ast.Unary):
        _value_names(v.operand, out)
    elif isinstance(v, ast.FuncCall):
        for a in v.args:
            _value_names(a, out)
    elif isinstance(v, ast.Dims):
        for item in v.items:
            _value_names(item, out)


# -- values ------------------------------------------------------------------------------

def call_values(lw: Lowering, call: ast.Call, ctx: Ctx) -> tuple[list[Arg], list[Kwarg]]:
    args = [(value(lw, a, ctx), a.span) for a in call.args]
    kwargs = [(k.name, value(lw, k.value, ctx), k.value.span, k.name_span) for k in call.kwargs]
    return args, kwargs


def value(lw: Lowering, v: ast.Value, ctx: Ctx) -> object:
    if isinstance(v, ast.Global):
        return GLOBAL
    if isinstance(v, ast.Dims):
        return tuple(dim(lw, item, ctx, "a size") for item in v.items)
    return evaluate(v, ctx.env, lw.limits)


def dim(lw: Lowering, expr: ast.Expr, ctx: Ctx, what: str) -> int:
    return coerce(evaluate(expr, ctx.env, lw.limits), "int", expr.span, what)  # type: ignore


def integer(lw: Lowering, expr: ast.Value, ctx: Ctx, what: str) -> int:
    return coerce(value(lw, expr, ctx), "int", expr.span, what)  # type: ignore[return-value]
