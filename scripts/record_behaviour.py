"""Record what the compiler does TODAY, as golden files, before a refactor.

    python scripts/record_behaviour.py                  # every spec, ONNX included
    python scripts/record_behaviour.py resnet18 ...     # only these specs
    python scripts/record_behaviour.py --no-onnx        # keep the recorded ONNX sections

This records the behaviour of the code it runs with (the resnet_dsl next to this script),
not what the behaviour should be: it is meant to be run once on the commit before a
refactor of the IR and the torch backend ("behaviour unchanged"), so that
tests/test_behaviour_golden.py can then show that nothing changed. Run it again only
when a change of behaviour is intended, and review the diff of tests/golden/behaviour/.
The goldens in the repository were recorded from a clean checkout of a commit (a git
worktree), never from a working tree with edits in it; MANIFEST.json says which.

For every shipped spec (specs/*.rnet, compiled with its defaults) it writes
tests/golden/behaviour/<spec>/:

    behaviour.json  network, arguments, shapes, parameter/MAC/activation totals;
                    the sha256 of the IR JSON (`rnetc ir --json`);
                    the state dict in order: [name, shape, dtype, parameter|buffer]
                    (built on the meta device);
                    after torch.manual_seed(0); build_module(net) (default init):
                    [name, sum, sum of squares] of every state-dict tensor (float64);
                    the eval-mode output for torch.manual_seed(1); x = randn(2, *input):
                    all values when the output is small, else the first 16 values of
                    each row and each row's sum and sum of squares (float64);
                    cifar_resnet20 only: the same in train mode, the gradient norms after
                    y.sum().backward() (the first conv weight's singled out) and the
                    BN buffers' sums after that one training forward;
                    the ONNX export (export_onnx with its defaults: dynamic batch, the
                    minimised graph, checked in onnxruntime): the node op_types in order,
                    the op counts, the rewrites, the opset, inputs/outputs, each node's
                    integer attributes, the initializer shapes and the metadata (the
                    spec text as its hash); where the export's check fails (E902, as
                    for preact_resnet1001), the code, the message and the graph of the
                    file it kept as NAME.failed
    emit.py         emit_python(net), the standalone PyTorch source (its state dict is
                    checked against the recorded one before it is written)
    ir.txt          format_ir(net), what `rnetc ir` prints
    ir.json         the IR JSON itself, for the few specs in IR_JSON_SPECS
    diagram*.dot    to_digraph(net, ...).source (`rnetc draw -o x.dot`) for each option
                    combination in DIAGRAMS (all of them for FULL_DIAGRAM_SPECS)

Non-finite numbers are written as the strings "nan", "inf", "-inf": the default
initialisation of preact_resnet1001 (BN is the identity in eval mode before training)
overflows, and its eval output is NaN. That is today's behaviour, and recorded as such.

Torch runs on one thread (as the test does), so the numbers are reproducible to the bit
on one machine; the test still compares them with rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
GOLDEN = REPO / "tests" / "golden" / "behaviour"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SMALL_OUTPUT = 64           # at most this many values per row: record them all
HEAD_VALUES = 16            # else the first 16 of each row, and its sum and sum of squares
BATCH = 2
TRAIN_SPEC = "cifar_resnet20"
ONNX_ALWAYS = ("cifar_resnet20", "resnet18")   # the test exports the others with RNETC_SLOW_TESTS=1
IR_JSON_SPECS = ("cifar_resnet20", "resnet18", "wrn40_4")
THREADS = 1

# Diagram variants: file name -> to_digraph keyword arguments. The first four are
# recorded for every spec; all eight for FULL_DIAGRAM_SPECS.
DIAGRAMS = {
    "diagram.dot": {},                                            # the default (collapsed)
    "diagram.expand.dot": {"expand": True},                      # every layer
    "diagram.lr.dot": {"rankdir": "LR"},
    "diagram.noshapes.dot": {"shapes": False},
    "diagram.lr.noshapes.dot": {"rankdir": "LR", "shapes": False},
    "diagram.expand.lr.dot": {"expand": True, "rankdir": "LR"},
    "diagram.expand.noshapes.dot": {"expand": True, "shapes": False},
    "diagram.expand.lr.noshapes.dot": {"expand": True, "rankdir": "LR", "shapes": False},
}
BASIC_DIAGRAMS = tuple(DIAGRAMS)[:4]
FULL_DIAGRAM_SPECS = ("cifar_resnet20", "resnet18", "preact_resnet164")


def spec_stems() -> list[str]:
    return sorted(p.stem for p in SPECS.glob("*.rnet"))


def diagram_files(stem: str) -> tuple[str, ...]:
    return tuple(DIAGRAMS) if stem in FULL_DIAGRAM_SPECS else BASIC_DIAGRAMS


@contextlib.contextmanager
def in_repo() -> Iterator[None]:
    """Compile with paths relative to the repository root, so that texts that name the
    spec file (`rnetc ir`'s header, the ONNX metadata) do not depend on the checkout."""
    before = os.getcwd()
    os.chdir(REPO)
    try:
        yield
    finally:
        os.chdir(before)


def compiled(stem: str):
    from resnet_dsl.compiler import compile_network

    with in_repo():
        return compile_network(f"specs/{stem}.rnet")


@contextlib.contextmanager
def threads(n: int = THREADS) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- what is recorded -----------------------------------------------------------------

def network_facts(net) -> dict:
    ir_json = net.model_dump_json(indent=1)
    return {
        "network": net.name,
        "file": net.file,
        "arguments": dict(net.arguments),
        "input_shape": list(net.input_shape),
        "output_shape": list(net.output_shape),
        "totals": net.totals.model_dump(),
        "nodes": len(net.nodes),
        "ir_json_sha256": hashlib.sha256(ir_json.encode("utf-8")).hexdigest(),
    }


def ir_texts(net) -> tuple[str, str]:
    """(`rnetc ir` text, `rnetc ir --json` text)."""
    from resnet_dsl.ir.printer import format_ir

    return format_ir(net), net.model_dump_json(indent=1)


def state_dict_entries(model) -> list[list]:
    params = {name for name, _ in model.named_parameters()}
    return [[name, list(t.shape), str(t.dtype).removeprefix("torch."),
             "parameter" if name in params else "buffer"]
            for name, t in model.state_dict().items()]


def meta_state_dict(net) -> list[list]:
    from resnet_dsl.backends.torch import build_module

    return state_dict_entries(build_module(net, device="meta"))


def tensor_stats(t) -> list[float]:
    d = t.detach().double()
    return encode([d.sum().item(), (d * d).sum().item()])


def summarise_output(y) -> dict:
    """A float64 summary of a (batch, n) output: every value when n is small, else the
    first HEAD_VALUES of each row with each row's sum and sum of squares."""
    import torch

    d = y.detach().double().reshape(y.shape[0], -1)
    out: dict = {"shape": list(y.shape), "dtype": str(y.dtype).removeprefix("torch."),
                 "finite": bool(torch.isfinite(d).all())}
    if d.shape[1] <= SMALL_OUTPUT:
        out["values"] = encode(d.tolist())
    else:
        out["head"] = encode(d[:, :HEAD_VALUES].tolist())
        out["sum"] = encode(d.sum(dim=1).tolist())
        out["sumsq"] = encode((d * d).sum(dim=1).tolist())
    return out


def encode(values):
    """Floats for JSON: NaN and the infinities as the strings "nan", "inf", "-inf"."""
    if isinstance(values, list):
        return [encode(v) for v in values]
    if isinstance(values, float) and not math.isfinite(values):
        return str(values)
    return values


def fixed_input(net):
    import torch

    torch.manual_seed(1)
    return torch.randn(BATCH, *net.input_shape)


def default_model(net):
    """torch.manual_seed(0), then build_module(net): the default initialisation on the CPU."""
    import torch

    from resnet_dsl.backends.torch import build_module

    torch.manual_seed(0)
    return build_module(net, device="cpu")


def eval_record(net) -> dict:
    """The default-initialised model's tensors and its eval-mode output for a fixed input."""
    import torch

    with threads():
        model = default_model(net)
        init = [[name, *tensor_stats(t)] for name, t in model.state_dict().items()]
        model.eval()
        x = fixed_input(net)
        x_copy = x.clone()
        with torch.no_grad():
            y = model(x)
        return {"init_stats": init, "eval_output": summarise_output(y),
                "input_unchanged": bool(torch.equal(x, x_copy))}


def train_record(net) -> dict:
    """Train mode: the output, the gradients of y.sum() and the BN buffers afterwards."""
    with threads():
        model = default_model(net)
        model.train()
        x = fixed_input(net)
        y = model(x)
        out = summarise_output(y)
        y.sum().backward()
        grads = [[name, encode(p.grad.double().norm().item()) if p.grad is not None else None]
                 for name, p in model.named_parameters()]
        first_conv = next(name for name, p in model.named_parameters() if p.dim() == 4)
        conv_grad = dict((n, g) for n, g in grads)[first_conv]
        buffers = [[name, *tensor_stats(b)] for name, b in model.named_buffers()]
    return {"output": out, "first_conv_weight": first_conv,
            "first_conv_weight_grad_norm": conv_grad, "grad_norms": grads,
            "buffers_after": buffers}


def onnx_record(net, folder: str | os.PathLike) -> dict:
    """Export with export_onnx's defaults and describe the file's graph."""
    import onnx
    import torch

    from resnet_dsl.backends.onnx import export_onnx

    from resnet_dsl.backends.onnx.minimize import op_counts
    from resnet_dsl.errors import RnetError

    path = Path(folder) / f"{net.name}.onnx"
    failure = None
    with threads(), in_repo():
        torch.manual_seed(0)
        try:
            report = export_onnx(net, path)
        except RnetError as exc:
            # E902: onnxruntime disagrees with PyTorch (preact_resnet1001: the default
            # initialisation overflows to NaN in eval mode, so the check cannot pass).
            # The file is kept as NAME.failed; its graph is what is recorded.
            failed = path.with_name(path.name + ".failed")
            if exc.codes != ["E902"] or not failed.exists():
                raise
            failure, report, path = exc.diagnostics[0], None, failed
    proto = onnx.load(path)
    graph = proto.graph

    def dims(value) -> list:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    def int_attrs(node) -> dict:
        out = {}
        for a in node.attribute:
            if a.type == onnx.AttributeProto.INT:
                out[a.name] = a.i
            elif a.type == onnx.AttributeProto.INTS:
                out[a.name] = list(a.ints)
        return dict(sorted(out.items()))

    meta = {}
    for p in proto.metadata_props:
        if p.key in ("rnetc.spec", "rnetc.imports"):   # texts: their hash
            meta[p.key + ".sha256"] = hashlib.sha256(p.value.encode("utf-8")).hexdigest()
        else:
            meta[p.key] = p.value
    check = report.check if report else None
    return {
        "ops": [n.op_type for n in graph.node],
        "op_counts": dict(report.op_counts) if report else op_counts(proto),
        "rewrites": dict(report.rewrites) if report else None,   # not reported on failure
        "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "check_passed": check.passed if check else False,
        "check_batches": [b.batch for b in check.batches] if check else [],
        "error": None if failure is None else {
            "code": failure.code,
            # the message without the temporary path at its end
            "message": failure.message.split("; the file is kept as")[0]},
        "inputs": [[i.name, dims(i)] for i in graph.input],
        "outputs": [[o.name, dims(o)] for o in graph.output],
        "node_int_attributes": [[n.op_type, int_attrs(n)] for n in graph.node],
        "initializers": len(graph.initializer),
        "initializer_shapes": sorted([list(t.dims) for t in graph.initializer]),
        "external_data": any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer),
        "graph_name": graph.name,
        "metadata": dict(sorted(meta.items())),
    }


def emitted_source(net) -> str:
    from resnet_dsl.backends.torch import emit_python

    return emit_python(net)


def emitted_state_dict(source: str, name: str) -> list[list]:
    """Execute an emitted file, build its model on the meta device: its state dict."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}_emitted.py"
        path.write_text(source, encoding="utf-8")
        module_name = f"_behaviour_emitted_{name}_{abs(hash(tmp))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
            cls = getattr(module, re.findall(r"^class (\w+)\(", source, re.M)[-1])
            with torch.device("meta"):
                model = cls()
        finally:
            sys.modules.pop(module_name, None)
    return state_dict_entries(model)


def diagram(net, options: dict) -> str:
    from resnet_dsl.backends.graphviz import to_digraph

    return to_digraph(net, **options).source


# -- writing ----------------------------------------------------------------------------

def dumps(obj, indent: int = 0) -> str:
    """JSON with dicts indented and flat lists (or lists of flat lists' rows) on one line."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and any(isinstance(v, (list, dict)) for v in obj):
        if all(_flat(v) for v in obj):
            rows = [f"{inner}{json.dumps(v, allow_nan=False)}" for v in obj]
        else:
            rows = [f"{inner}{dumps(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def _flat(v) -> bool:
    """A row that goes on one line: nested at most three deep (a state-dict entry, a
    node's attributes)."""
    return _depth(v) <= 3


def _depth(v) -> int:
    if isinstance(v, dict):
        return 1 + max(map(_depth, v.values()), default=0)
    if isinstance(v, list):
        return 1 + max(map(_depth, v), default=0)
    return 0


def check_finite(obj, where: str = "") -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite value at {where}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            check_finite(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            check_finite(v, f"{where}[{i}]")


def record_spec(stem: str, onnx_folder: str | None, previous: dict | None) -> dict[str, str]:
    """Everything recorded for one spec: file name -> text."""
    net = compiled(stem)
    record = {"spec": f"specs/{stem}.rnet", **network_facts(net)}
    record["state_dict"] = meta_state_dict(net)
    record.update(eval_record(net))
    if stem == TRAIN_SPEC:
        record["train"] = train_record(net)
    if onnx_folder is not None:
        record["onnx"] = onnx_record(net, onnx_folder)
    elif previous and "onnx" in previous:
        record["onnx"] = previous["onnx"]
    source = emitted_source(net)
    emitted = emitted_state_dict(source, stem)
    if emitted != record["state_dict"]:
        raise AssertionError(f"{stem}: the emitted file's state dict is not build_module's")
    ir_text, ir_json = ir_texts(net)
    files = {"emit.py": source, "ir.txt": ir_text}
    if stem in IR_JSON_SPECS:
        files["ir.json"] = ir_json
    for name in diagram_files(stem):
        files[name] = diagram(net, DIAGRAMS[name])
    record["files"] = sorted(["behaviour.json", *files])
    check_finite(record, stem)
    files["behaviour.json"] = dumps(record) + "\n"
    for name, text in files.items():   # nothing may depend on where the checkout is
        if str(REPO) in text:
            raise AssertionError(f"{stem}/{name} names the checkout {REPO}")
    return files


def write_spec(stem: str, files: dict[str, str]) -> None:
    folder = GOLDEN / stem
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def manifest(stems: list[str]) -> str:
    import graphviz
    import onnx
    import onnxruntime
    import torch

    import resnet_dsl

    def git(*argv) -> str:
        try:
            return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    return dumps({
        "what": "behaviour of rnetc recorded by scripts/record_behaviour.py, before a refactor",
        "commit": git("rev-parse", "HEAD"),
        "working_tree_clean": git("status", "--porcelain", "--untracked-files=no") == "",
        "resnet_dsl": resnet_dsl.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "graphviz": graphviz.__version__,
        "torch_threads": THREADS,
        "specs": stems,
    }) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="*", help="spec names (default: every specs/*.rnet)")
    ap.add_argument("--no-onnx", action="store_true",
                    help="do not export; keep the ONNX sections already recorded")
    args = ap.parse_args(argv)
    import resnet_dsl

    if Path(resnet_dsl.__file__).resolve().parents[1] != REPO:
        ap.error(f"resnet_dsl is imported from {resnet_dsl.__file__}, not from {REPO}; "
                 f"run with PYTHONPATH={REPO}")
    stems = args.specs or spec_stems()
    unknown = sorted(set(stems) - set(spec_stems()))
    if unknown:
        ap.error(f"no such spec: {', '.join(unknown)}")
    GOLDEN.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as onnx_folder:
        for stem in stems:
            start = time.perf_counter()
            old = GOLDEN / stem / "behaviour.json"
            previous = json.loads(old.read_text(encoding="utf-8")) if old.exists() else None
            files = record_spec(stem, None if args.no_onnx else onnx_folder, previous)
            write_spec(stem, files)
            print(f"{stem:22s} {len(files)} files  {time.perf_counter() - start:6.1f} s", flush=True)
    (GOLDEN / "MANIFEST.json").write_text(manifest(spec_stems()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
