"""Rewrites that make an exported inference graph minimal, each a small function.

torch.onnx's dynamo exporter (with its onnxscript optimizer) already folds an eval-mode
BatchNorm into the convolution before it and emits no Identity or Dropout node; these
rules are the guarantee that the file stays minimal if an exporter version does not:

    drop_passthrough   Identity, and Dropout in inference mode, are wires: removed
    fold_batchnorm     Conv -> BatchNormalization (the conv's only reader) becomes one
                       Conv with scaled weights and a bias
    drop_unused        initializers no node reads any more

`minimize` applies them in that order and returns a new model; a rule that finds
nothing changes nothing. A BatchNormalization that does not follow a Conv whose output
only it reads (the pre-activation BN after an addition) stays: it is one fused
inference op, and folding it elsewhere would change the result. Uses onnx and numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper

Rule = Callable[[onnx.GraphProto], int]


def minimize(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Apply `RULES` to a copy of `model`; return it and how often each rule fired.

    >>> from onnx import helper, TensorProto
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    >>> graph = helper.make_graph([helper.make_node("Identity", ["x"], ["h"]),
    ...                            helper.make_node("Relu", ["h"], ["y"])], "g", [x], [y])
    >>> small, fired = minimize(helper.make_model(graph))
    >>> [n.op_type for n in small.graph.node], fired["drop_passthrough"]
    (['Relu'], 1)
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    fired = {rule.__name__: rule(out.graph) for rule in RULES}
    return out, fired


def drop_passthrough(graph: onnx.GraphProto) -> int:
    """Remove Identity nodes and inference-mode Dropout nodes (whose mask nobody reads)."""
    graph_outputs = {o.name for o in graph.output}
    removed = 0
    for node in list(graph.node):
        if not _is_passthrough(node, graph):
            continue
        source, result = node.input[0], node.output[0]
        if result in graph_outputs:
            # The graph output keeps its name: the producer of `source` writes it directly,
            # unless `source` is itself a graph input or output, or read by others.
            if source in graph_outputs or _is_graph_input(graph, source) or \
                    _readers(graph, source, exclude=node) or not _producer(graph, source):
                continue
            _rename_value(graph, source, result)
        else:
            _replace_reads(graph, result, source)
        _forget_value_info(graph, result if result not in graph_outputs else source)
        graph.node.remove(node)
        removed += 1
    return removed


def fold_batchnorm(graph: onnx.GraphProto) -> int:
    """Fold each BatchNormalization that is the only reader of a Conv into that Conv:
    W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps) per channel."""
    folded = 0
    for bn in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        conv = _producer(graph, bn.input[0])
        if conv is None or conv.op_type != "Conv" or len(bn.output) != 1 or \
                _attr(bn, "training_mode", 0) or bn.input[0] in {o.name for o in graph.output} or \
                _readers(graph, bn.input[0], exclude=bn):
            continue
        values = [_initializer(graph, name) for name in list(conv.input[1:]) + list(bn.input[1:])]
        if any(v is None for v in values):
            continue
        weight, *rest = values
        bias = rest.pop(0) if len(conv.input) > 2 else np.zeros(weight.shape[0], weight.dtype)
        gamma, beta, mean, var = rest
        scale = gamma / np.sqrt(var + np.asarray(_attr(bn, "epsilon", 1e-5), var.dtype))
        new_weight = (weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))).astype(weight.dtype)
        new_bias = ((bias - mean) * scale + beta).astype(weight.dtype)
        names = (_fresh(graph, f"{conv.output[0]}_folded_weight"),
                 _fresh(graph, f"{conv.output[0]}_folded_bias"))
        graph.initializer.extend([numpy_helper.from_array(new_weight, names[0]),
                                  numpy_helper.from_array(new_bias, names[1])])
        del conv.input[1:]
        conv.input.extend(names)
        _forget_value_info(graph, conv.output[0])
        conv.output[0] = bn.output[0]
        graph.node.remove(bn)
        folded += 1
    return folded


def drop_unused(graph: onnx.GraphProto) -> int:
    """Remove initializers (and their value_info) that no node reads."""
    read = {name for node in graph.node for name in node.input}
    read |= {o.name for o in graph.output}
    unused = [t for t in graph.initializer if t.name not in read]
    for tensor in unused:
        graph.initializer.remove(tensor)
    for tensor in unused:
        _forget_value_info(graph, tensor.name)
    return len(unused)


RULES: tuple[Rule, ...] = (drop_passthrough, fold_batchnorm, drop_unused)


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Nodes of the main graph by op type, most frequent first (ties: in graph order)."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))  # sorted() is stable


# -- helpers ----------------------------------------------------------------------------

def _is_passthrough(node: onnx.NodeProto, graph: onnx.GraphProto) -> bool:
    if node.domain not in ("", "ai.onnx"):
        return False
    if node.op_type == "Identity":
        return True
    if node.op_type != "Dropout":
        return False
    # Inference mode: no training_mode input, or an initializer that says false; the mask
    # output, if declared, must be unread.
    if len(node.input) > 2 and node.input[2]:
        mode = _initializer(graph, node.input[2])
        if mode is None or bool(mode):
            return False
    return len(node.output) < 2 or not node.output[1] or not _readers(graph, node.output[1])


def _producer(graph: onnx.GraphProto, name: str) -> onnx.NodeProto | None:
    return next((n for n in graph.node if name in n.output), None)


def _readers(graph: onnx.GraphProto, name: str,
             exclude: onnx.NodeProto | None = None) -> list[onnx.NodeProto]:
    return [n for n in graph.node if n is not exclude and name in n.input]


def _is_graph_input(graph: onnx.GraphProto, name: str) -> bool:
    return any(i.name == name for i in graph.input) or \
        any(t.name == name for t in graph.initializer)


def _replace_reads(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Make the producer of `old` write `new`, and its readers read `new`."""
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    _replace_reads(graph, old, new)


def _forget_value_info(graph: onnx.GraphProto, name: str) -> None:
    for info in [v for v in graph.value_info if v.name == name]:
        graph.value_info.remove(info)


def _initializer(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    tensor = next((t for t in graph.initializer if t.name == name), None)
    return None if tensor is None else numpy_helper.to_array(tensor)


def _attr(node: onnx.NodeProto, name: str, default):
    found = next((a for a in node.attribute if a.name == name), None)
    return default if found is None else onnx.helper.get_attribute_value(found)


def _fresh(graph: onnx.GraphProto, base: str) -> str:
    taken = {t.name for t in graph.initializer} | {v for n in graph.node for v in n.output}
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name
