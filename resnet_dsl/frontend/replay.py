"""Replaying a block instance: a stage repeats its block, and every repeat after the first
usually binds the same values (`bottleneck(64)` x 3: only the first gets the stride), so
it makes the same layers under another name. The first instance whose body ran cleanly
is recorded as a recipe (its nodes relative to its scope and input); a later instance
whose binding is the same, on the values its body can read, is stamped from the recipe
instead of lowering its statements again. The result is the same IR, node for node
(`tests/test_behaviour_golden.py` pins it for every shipped spec); only the work differs
(a 1001-layer net lowers about twice as fast).

What the body can read is found from its text: the names in its expressions. A
parameter it never reads (`net_block_index`, where no schedule uses it) does not split
the recipes. Nothing is recorded from a body that reported a problem, read a poisoned
value or reached outside its block; a replay that would pass a limit runs the body
instead, so limits and their messages are the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_dsl.frontend import ast
from resnet_dsl.frontend.context import BlockState, Ctx, Lowering
from resnet_dsl.frontend.evaluate import _POISON, Env

_UNREPLAYABLE = "\0unreplayable"


@dataclass(frozen=True, slots=True)
class Recipe:
    nodes: tuple[tuple[type, str, tuple, dict, set, tuple], ...]
    # per node: class, name in the scope, inputs (None: the block's input; else a name in
    # the scope), its other fields, pydantic's fields-set, trace past the block's own
    current: str
    fork: str | None
    state: tuple  # fork_span, add (name in the scope or None), proj_bn, proj_gn, proj_named, proj_ws
    steps: int


def key(lw: Lowering, definition: ast.BlockDef, env: Env, ctx: Ctx) -> tuple | None:
    """The recipe key of an instance, or None when it must not be replayed."""
    names = lw.memo.get(("reads", id(definition)))
    if names is None:
        found: set[str] = set()
        _body_names(definition.body, found)
        names = lw.memo[("reads", id(definition))] = tuple(sorted(found))
    if _UNREPLAYABLE in names:
        return None
    values = env.values
    parts = []
    for n in names:
        if n in values:
            v = values[n]
            if v is _POISON:
                return None
            parts.append((n, _typed(v)))
    try:
        k = ("block", id(definition), ctx.section, ctx.depth, *parts)
        hash(k)
    except TypeError:
        return None
    return k


def record(lw: Lowering, k: tuple, scope: str, first: int, steps: int,
           state: BlockState, trace_len: int) -> None:
    """Keep the nodes an instance made (from index `first` of `lw.nodes`) as the recipe."""
    prefix = scope + "."
    cut = len(prefix)
    made = list(lw.nodes.values())[first:]
    names = {n.name for n in made}
    nodes = []
    for node in made:
        if not node.name.startswith(prefix):
            return
        inputs = []
        for src in node.inputs:
            if src == state.input:
                inputs.append(None)
            elif src in names:
                inputs.append(src[cut:])
            else:
                return
        fields = dict(node.__dict__)  # the declared order; name, inputs ... are set on replay
        nodes.append((type(node), node.name[cut:], tuple(inputs), fields,
                      set(node.__pydantic_fields_set__), tuple(node.trace[trace_len:])))
    if not nodes or lw.current not in names:
        return
    def rel(name: str | None) -> str | None:  # "" stands for the block's input
        return None if name is None else ("" if name == state.input else name[cut:])

    if (state.fork is not None and state.fork != state.input and state.fork not in names) or \
            (state.add is not None and state.add not in names):
        return
    lw.memo[k] = Recipe(tuple(nodes), lw.current[cut:], rel(state.fork),
                        (state.fork_span, rel(state.add), state.proj_bn, state.proj_gn, state.proj_named,
                         state.proj_ws), steps)


def replay(lw: Lowering, recipe: Recipe, scope: str, ctx: Ctx, trace: tuple,
           state: BlockState) -> bool:
    """Stamp the recipe's nodes under `scope`; False (nothing done) where a limit would
    be passed, so that the body runs and reports it where it is."""
    if lw.steps + recipe.steps > lw.limits.max_steps or \
            len(lw.nodes) + len(recipe.nodes) > lw.limits.max_layers:
        return False
    lw.steps += recipe.steps
    prefix = scope + "."
    outer = list(trace)
    block_input = state.input
    nodes = lw.nodes
    for cls, rel, inputs, fields, fields_set, tail in recipe.nodes:
        data = fields.copy()
        name = prefix + rel
        data.update(name=name, inputs=[block_input if i is None else prefix + i for i in inputs],
                    trace=outer + list(tail), section=ctx.section, stage=ctx.stage,
                    block=scope)
        node = cls.__new__(cls)
        object.__setattr__(node, "__dict__", data)
        object.__setattr__(node, "__pydantic_fields_set__", set(fields_set))
        object.__setattr__(node, "__pydantic_extra__", None)
        object.__setattr__(node, "__pydantic_private__", None)
        nodes[name] = node
    lw.current = prefix + recipe.current
    fork_span, add, proj_bn, proj_gn, proj_named, proj_ws = recipe.state
    state.fork = None if recipe.fork is None else (
        block_input if recipe.fork == "" else prefix + recipe.fork)
    state.fork_span = fork_span
    state.add = None if add is None else prefix + add
    state.proj_bn, state.proj_gn = proj_bn, proj_gn
    state.proj_named, state.proj_ws = proj_named, proj_ws
    return True


def _typed(value: object) -> object:
    """A key part that tells 1, 1.0 and true apart (they are equal in Python)."""
    if isinstance(value, tuple):
        return (tuple, *[_typed(v) for v in value])
    return (type(value), value)


def _body_names(stmts, out: set[str]) -> None:
    for stmt in stmts:
        if isinstance(stmt, ast.Let):
            _expr_names(stmt.value, out)
        elif isinstance(stmt, ast.Require):
            _expr_names(stmt.condition, out)
        elif isinstance(stmt, ast.If):
            _expr_names(stmt.condition, out)
            _body_names(stmt.then, out)
            _body_names(stmt.otherwise or (), out)
        elif isinstance(stmt, ast.Split):
            _expr_names(stmt.parts, out)
            _body_names(stmt.body, out)
        elif isinstance(stmt, ast.Call):
            for a in stmt.args:
                _expr_names(a, out)
            for kw in stmt.kwargs:
                _expr_names(kw.value, out)
        else:  # input, sections and stages are errors in a block: record nothing of it
            out.add(_UNREPLAYABLE)


def _expr_names(v: object, out: set[str]) -> None:
    if isinstance(v, ast.Name):
        out.add(v.id)
    elif isinstance(v, ast.Binary):
        _expr_names(v.left, out)
        _expr_names(v.right, out)
    elif isinstance(v, ast.Unary):
        _expr_names(v.operand, out)
    elif isinstance(v, ast.FuncCall):
        for a in v.args:
            _expr_names(a, out)
    elif isinstance(v, ast.Dims):
        for item in v.items:
            _expr_names(item, out)
