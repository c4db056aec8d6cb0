"""The graph rewrites of resnet_dsl/backends/onnx/minimize.py, on hand-built ONNX graphs
(the exporter of torch 2.14 gives them nothing to do, so they are tested on their own):
each case lists the graph's ops before and after, and onnxruntime computes the same
outputs from both graphs, with BN statistics far from the identity."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from resnet_dsl.backends.onnx.minimize import minimize, op_counts  # noqa: E402

RNG = np.random.default_rng(0)
C_IN, C_OUT = 3, 4


def conv(inp: str, out: str, weight: str = "w", bias: str | None = "b"):
    inputs = [inp, weight] + ([bias] if bias else [])
    return helper.make_node("Conv", inputs, [out], pads=[1, 1, 1, 1], name=f"conv_{out}")


def bn(inp: str, out: str, prefix: str = "bn", **attrs):
    return helper.make_node("BatchNormalization", [inp] + [f"{prefix}_{k}" for k in
                                                           ("scale", "bias", "mean", "var")],
                            [out], epsilon=1e-3, name=f"bn_{out}", **attrs)


def node(op: str, inputs: list[str], outputs: list[str], **attrs):
    return helper.make_node(op, inputs, outputs, name=f"{op}_{outputs[0]}", **attrs)


def initializers(prefixes=("bn",), channels=C_OUT) -> list:
    out = [numpy_helper.from_array(RNG.normal(size=(C_OUT, C_IN, 3, 3)).astype(np.float32), "w"),
           numpy_helper.from_array(RNG.normal(size=C_OUT).astype(np.float32), "b")]
    for p in prefixes:
        out += [numpy_helper.from_array(RNG.uniform(0.5, 2.0, channels).astype(np.float32), f"{p}_scale"),
                numpy_helper.from_array(RNG.normal(size=channels).astype(np.float32), f"{p}_bias"),
                numpy_helper.from_array(RNG.normal(size=channels).astype(np.float32), f"{p}_mean"),
                numpy_helper.from_array(RNG.uniform(0.2, 3.0, channels).astype(np.float32), f"{p}_var")]
    out.append(numpy_helper.from_array(np.array(False), "false"))
    out.append(numpy_helper.from_array(np.array(True), "true"))
    out.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
    return out


def model(nodes, outputs=("y",), channels=(C_OUT,), inits=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, C_IN, 5, 5])
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["n", "c", "h", "w"]) for o in outputs]
    graph = helper.make_graph(nodes, "g", [x], outs, initializer=inits or initializers())
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 9
    return m


def run(m) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the cases share initializers that some do not read
    session = ort.InferenceSession(m.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(size=(2, C_IN, 5, 5)).astype(np.float32)
    return session.run(None, {"x": x})


CASES = [
    # (id, graph, ops after, rules that fire)
    ("conv_bn_folds",
     model([conv("x", "c"), bn("c", "y")]),
     {"Conv": 1}, {"fold_batchnorm": 1}),
    ("conv_without_bias_bn_folds",
     model([conv("x", "c", bias=None), bn("c", "h"), node("Relu", ["h"], ["y"])]),
     {"Conv": 1, "Relu": 1}, {"fold_batchnorm": 1}),
    ("identity_in_the_middle",
     model([conv("x", "c"), node("Identity", ["c"], ["i"]), bn("i", "y")]),
     {"Conv": 1}, {"drop_passthrough": 1, "fold_batchnorm": 1}),
    ("identity_before_the_output",
     model([conv("x", "c"), node("Relu", ["c"], ["r"]), node("Identity", ["r"], ["y"])]),
     {"Conv": 1, "Relu": 1}, {"drop_passthrough": 1}),
    ("inference_dropout",
     model([conv("x", "c"), node("Dropout", ["c", "", "false"], ["d", "mask"]),
            node("Relu", ["d"], ["y"])]),
     {"Conv": 1, "Relu": 1}, {"drop_passthrough": 1}),
    ("training_dropout_stays",  # (ratio 0, so that the outputs can be compared)
     model([conv("x", "c"), node("Dropout", ["c", "zero", "true"], ["y"])]),
     {"Conv": 1, "Dropout": 1}, {}),
    ("conv_read_twice_keeps_its_bn",  # folding would change the other reader's input
     model([conv("x", "c"), bn("c", "h"), node("Add", ["h", "c"], ["y"])]),
     {"Conv": 1, "BatchNormalization": 1, "Add": 1}, {}),
    ("bn_after_an_add_stays",  # the pre-activation BN: no conv to fold into
     model([conv("x", "c"), node("Add", ["c", "c"], ["a"]), bn("a", "y")]),
     {"Conv": 1, "Add": 1, "BatchNormalization": 1}, {}),
    ("conv_output_is_a_graph_output",
     model([conv("x", "c"), bn("c", "y")], outputs=("y", "c")),
     {"Conv": 1, "BatchNormalization": 1}, {}),
    ("identity_of_the_input_to_the_output_stays",
     model([node("Identity", ["x"], ["y"])]),
     {"Identity": 1}, {}),
]


@pytest.mark.parametrize("original, after, fired", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rewrite(original, after, fired):
    before = original.SerializeToString()
    small, counts = minimize(original)
    assert op_counts(small) == after
    # (drop_unused fires in every case: the cases share one set of initializers)
    assert {k: v for k, v in counts.items() if v and k != "drop_unused"} == fired
    onnx.checker.check_model(small, full_check=True)
    for want, got in zip(run(original), run(small)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert original.SerializeToString() == before   # minimize works on a copy


def test_shared_weights_are_not_overwritten():
    # Two convs read the same weight; only one is followed by a BN. Folding must give
    # that conv new initializers and leave the other conv's weight as it was.
    nodes = [conv("x", "c1"), bn("c1", "y1"), conv("x", "y2")]
    original = model(nodes, outputs=("y1", "y2"))
    small, counts = minimize(original)
    assert counts["fold_batchnorm"] == 1 and op_counts(small) == {"Conv": 2}
    for want, got in zip(run(original), run(small)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
