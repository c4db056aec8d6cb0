"""The error catalogue: every error code, what it means, an example and the fix.

`rnetc explain CODE` prints an entry; docs/errors.md is generated from this table
(`python -m resnet_dsl.catalog > docs/errors.md`, checked by a test), and every code has
a golden example under tests/errors/ whose rendered message is kept beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_dsl.frontend.signatures import LAYERS


@dataclass(frozen=True)
class Entry:
    code: str
    title: str
    explanation: str
    example: str
    fix: str
    example_is_spec: bool = True  # the example, compiled, reports this code (tested)


CATALOG: tuple[Entry, ...] = (
    Entry("E001", "syntax error",
          "The parser met a token it cannot accept here. The message says what it found and "
          "what it expected. An unclosed `(` or `{` is pointed out (for braces, judged by "
          "indentation: the `{` whose `}` is missing, not the outer one its `}` was taken "
          "for), and so is the `}` that ended a network or block early. Two pitfalls have "
          "their own message: comparisons do not chain (`8 <= d <= 110`), and `else` starts "
          "no line (a line break after an `if`'s `}` ends the `if`).",
          "network n {\n  input 3x32x32\n  conv 3x3 16 stride=\n}",
          "Finish the statement (`stride=2`). Statements end at a line break or `;`; keyword "
          "arguments are written `name=value`; `} else {` stays on one line; write "
          "`8 <= d and d <= 110` for a range."),
    Entry("E002", "cannot read a file",
          "The spec file does not exist or cannot be read.",
          "rnetc check missing.rnet",
          "Check the path.", False),
    Entry("E003", "not UTF-8",
          "Spec files are UTF-8 text; this one has bytes that are not.",
          "(a file saved as Latin-1 with an accented comment)",
          "Re-save the file as UTF-8.", False),
    Entry("E101", "unknown layer, block, function or network",
          "A name used as a layer, a block, a function (`min`, `max`) or an aliased network is "
          "not defined. The message suggests the closest known name.",
          "network n {\n  input 3x32x32\n  conv 3x3 16\n  batchnorm\n}",
          f"Use a built-in layer (`{' '.join(w for w in LAYERS if w not in ('fork', 'add', 'branch', 'mul'))}`), "
          "a block from the prelude (`rnetc prelude`), or define or import the block."),
    Entry("E102", "unknown name in an expression",
          "An expression refers to a name that is neither a parameter nor a `let` of the "
          "network or block it is in. Blocks see only their own parameters.",
          "network n(width = 16) {\n  input 3x32x32\n  conv 3x3 widht\n}",
          "Fix the spelling, or pass the value to the block as an argument."),
    Entry("E103", "duplicate name",
          "Two definitions (blocks, networks, parameters, lets, layer names given with `as`, "
          "stage names) use the same name in one scope.",
          "network n {\n  input 3x32x32\n  let w = 16\n  let w = 32\n}",
          "Rename one. Names cannot be rebound; `downsample` is reserved inside blocks."),
    Entry("E104", "unknown parameter or option",
          "A keyword argument, `--set NAME=...` or stage option names something the layer, "
          "block, network or stage does not have.",
          "network n {\n  input 3x32x32\n  conv 3x3 16 strides=2\n}",
          "Use one of the names the help line lists."),
    Entry("E105", "which network?",
          "The file defines no network, several networks (and none is named like the file), or "
          "not the one asked for with --network.",
          "block b(out) { conv 3x3 out; add }",
          "Add a network, or pass --network NAME."),
    Entry("E201", "wrong number of arguments",
          "A layer or block got more positional arguments than it takes, or an argument twice.",
          "network n {\n  input 3x32x32\n  conv 3x3 16 32\n}",
          "Remove the extra argument, or name it (`stride=2`)."),
    Entry("E202", "wrong type",
          "A value has the wrong type: a number where an integer is needed (widths, "
          "repeats), a number where a boolean is needed (`if`, `require`), a size where a "
          "number is needed. A layer's wrong argument gets its usage line, and two "
          "positional arguments in the wrong order (`conv 16 3x3`) the order that fits.",
          "network n(k = 1.5) {\n  input 3x32x32\n  conv 3x3 16 * k\n}",
          "Use integers for sizes (`//` divides integers); compare to get a boolean."),
    Entry("E203", "value out of range",
          "A value has the right type but is impossible: a width or repeat count below 1, a "
          "negative padding, a dropout probability outside [0, 1), pool padding over half "
          "the kernel.",
          "network n {\n  input 3x32x32\n  conv 3x3 0\n}",
          "Use a value in range; the message says which."),
    Entry("E204", "missing argument",
          "A layer, block or network parameter without a default was not given.",
          "network n {\n  input 3x32x32\n  conv 3x3\n}",
          "Give the argument (for a network: --set NAME=VALUE)."),
    Entry("E205", "unknown shortcut policy",
          "`shortcut=` takes identity, zeropad (A), proj (B), proj_all (C) or avgproj (D).",
          "network n {\n  input 3x32x32\n  stage x2 basic(16) shortcut=projection\n}",
          "Use one of the policies."),
    Entry("E206", "division by zero",
          "An expression divides by zero (`/`, `//` or `%`).",
          "network n(groups = 0) {\n  input 3x32x32\n  let w = 64 // groups\n}",
          "Check the parameter values."),
    Entry("E207", "argument in the wrong place",
          "The stride of a stage's blocks is set on the stage, not in the block call (only "
          "the first block is strided); the addition is always `add`; a named block call "
          "(`BLOCK(...) as NAME`) cannot contain another one (scopes nest one deep).",
          "network n {\n  input 3x32x32\n  stage x2 basic(32, stride=2)\n}",
          "Write `stage x2 basic(32) stride=2`."),
    Entry("E301", "the shortcut cannot join the residual branch",
          "In a residual block the shortcut's output must have the shape of the branch. An "
          "identity shortcut cannot change channels or size; a projection or zero-pad shortcut "
          "changes the size only by the block's stride.",
          "network n {\n  input 3x32x32\n  stage x2 basic(32) stride=2 shortcut=identity\n}",
          "Use shortcut=proj (1x1 conv + BN) or shortcut=zeropad (option A)."),
    Entry("E302", "a zero-pad shortcut would drop channels",
          "Option A pads new channels with zeros; it cannot reduce the channel count.",
          "network n {\n  input 3x32x32\n  conv 3x3 64\n  stage x1 basic(32) shortcut=zeropad\n}",
          "Use shortcut=proj where the block narrows."),
    Entry("E303", "groups do not divide the channels",
          "A grouped conv needs `groups` to divide both its input and output channels; "
          "likewise GroupNorm's groups, `split PARTS`, `softmax N` and `group_sum N` need "
          "channels that divide into equal parts.",
          "network n {\n  input 3x32x32\n  conv 3x3 64 groups=3\n}",
          "Pick a group count that divides both; the help line gives the largest."),
    Entry("E304", "the feature map collapses",
          "A conv or pooling layer would produce a map smaller than 1x1 for this input size.",
          "network n {\n  input 3x8x8\n  conv 7x7 16 stride=2 padding=0\n  conv 7x7 16 padding=0\n}",
          "Use a larger input (--input), or fewer stride-2 layers."),
    Entry("E305", "flat or spatial input expected",
          "`fc` needs a flat input (after `flatten`); conv and pooling layers need a CxHxW map.",
          "network n {\n  input 3x32x32\n  conv 3x3 16\n  fc 10\n}",
          "Add `avgpool global` and `flatten` before `fc`."),
    Entry("E306", "misplaced `fork` or `add`",
          "`fork` and `add` belong inside a block, once each, `fork` before `add`; every path "
          "through a residual block must reach its `add`. The side-branch and split markers "
          "are checked alike: `mul` needs an open `branch`, and `add_previous` a previous "
          "part of a `split`.",
          "block b(out, stride = 1) {\n  conv 3x3 out stride=stride\n  add\n  add\n}\n"
          "network n {\n  input 3x32x32\n  stage x1 b(3)\n}",
          "Keep one `add` per block."),
    Entry("E307", "statement in the wrong place",
          "`input`, `stem`, `head` and `stage` belong at the top level of a network; a "
          "residual block (one with `add`) is used by a `stage`, not called like a layer; a "
          "block without `add` takes no shortcut; `split` and `layer_scale` belong in a "
          "stage's blocks (a layer scale in the block's own layers, its parameter the "
          "block's).",
          "network n {\n  input 3x32x32\n  basic(16)\n}",
          "Write `stage x1 basic(16)`."),
    Entry("E308", "stride on a block without a `stride` parameter",
          "A stage's stride is passed to its first block's `stride` parameter; this block has "
          "none.",
          "block b(out) { conv 3x3 out; bn; add }\n"
          "network n {\n  input 3x32x32\n  conv 3x3 16\n  stage x2 b(16) stride=2\n}",
          "Add `stride = 1` to the block's parameters and use it in a conv."),
    Entry("E309", "missing or misplaced `input`",
          "A network starts with exactly one `input CxHxW`, before its first layer.",
          "network n {\n  conv 3x3 16\n}",
          "Add e.g. `input 3x224x224` as the first statement."),
    Entry("E401", "a `require` failed",
          "A check the spec makes on its own parameters does not hold; the message is the "
          "spec author's.",
          "network n(depth = 21) {\n  require (depth - 2) % 6 == 0, \"depth must be 6n+2\"\n"
          "  input 3x32x32\n}",
          "Choose parameter values the check admits (e.g. --set depth=20)."),
    Entry("E501", "import not found",
          "An `import \"path\"` names a file that does not exist (paths are relative to the "
          "importing file's folder).",
          "import \"blocks/missing.rnet\"",
          "Fix the path."),
    Entry("E502", "import cycle",
          "Two spec files import each other, directly or through others.",
          "# a.rnet: import \"b.rnet\"   b.rnet: import \"a.rnet\"",
          "Move the shared blocks into a third file that both import.", False),
    Entry("E503", "import outside the spec's folder",
          "Imports must stay inside the main spec's folder tree (no `..` escape and no "
          "symbolic link out of it), unless a search path admits the folder.",
          "import \"../../etc/passwd\"",
          "Move the file beside the spec, or pass --search-path DIR."),
    Entry("E601", "limit exceeded",
          "The spec asks for more than a resource limit allows: file size, nested imports, "
          "repeats, layers, channels, spatial size, parameters, activation memory, or an "
          "integer too large. Limits exist so that no spec can hang rnetc or exhaust memory; "
          "their defaults admit every real ResNet.",
          "network n {\n  input 3x32x32\n  stage x 1000000 basic(16)\n}",
          "Fix the spec, or raise the limit: --limit max_repeats=2000000 (Python: "
          "limits=Limits(max_repeats=2000000))."),
    Entry("E602", "recursion too deep",
          "Blocks call each other (or a network alias refers to itself) deeper than "
          "`max_block_depth`.",
          "block a(w) { b(w) }\nblock b(w) { a(w) }\nnetwork n {\n  input 3x8x8\n  a(4)\n}",
          "Break the cycle, or give a recursive block an `if` that stops it."),
    Entry("E701", "a name PyTorch cannot use",
          "Layer and stage names become attributes of PyTorch modules (`model.layer1`, "
          "`self.conv1` in the file `--emit-python` writes). A name that is a Python keyword, "
          "or that nn.Module already uses (`forward`, `training`, `to`, ...), cannot be one. "
          "`rnetc check` accepts such a spec; `rnetc compile` and `resnet_dsl.build` report it.",
          "network n {\n  input 3x32x32\n  conv 3x3 16 as forward\n}",
          "Rename the layer (`as NAME`) or the stage (`stage NAME`).", False),
    Entry("E702", "no inference build of this module",
          "`resnet_dsl.inference(model)` folds the BatchNorms of a model rnetc built "
          "(`resnet_dsl.build`, `build_module`, or a copy of one, weights loaded): it reads "
          "the structure rnetc's modules record (each block's steps). Any other module (a "
          "torchvision model, the class of an `--emit-python` file, a torch.compile'd or "
          "DistributedDataParallel wrapper) is refused. The inference build it returns is "
          "eval-only: its BNs are folded and its dropouts gone, so `train()` on it is "
          "refused with this code too.",
          "resnet_dsl.inference(torchvision.models.resnet50())",
          "Pass the module resnet_dsl.build made (for a wrapper, the module inside it: "
          "`model._orig_mod`, `model.module`); train that model, then make its inference "
          "build again.", False),
    Entry("E801", "training data not found",
          "`rnetc train` (or `compile --train`, `eval`) could not find the data: the "
          "--data-dir folder, one of the dataset's files, or the class folders of an image "
          "folder. The message names the path and the files it expected. Data is never "
          "downloaded.",
          "rnetc train specs/cifar_resnet20.rnet --data cifar10 --data-dir missing/",
          "Point --data-dir at the extracted dataset (docs/training.md lists the layouts), or "
          "use --data digits, which ships with scikit-learn.", False),
    Entry("E802", "malformed data file",
          "A data file has the wrong size or contents: a CIFAR binary file whose length is "
          "not a whole number of records, a truncated or inconsistent pickle, an image "
          "Pillow cannot read (in a data folder, or given to `rnetc predict`: not an image, "
          "truncated).",
          "rnetc train specs/cifar_resnet20.rnet --data cifar10 --data-dir truncated/",
          "Re-extract the dataset from its archive; the message names the file and what was "
          "expected.", False),
    Entry("E803", "unsafe pickle refused",
          "CIFAR's python-format files are pickles. rnetc reads them with a restricted "
          "unpickler that admits only the plain arrays, lists, dicts and bytes those files "
          "hold; a pickle that asks for anything else (a function such as `os.system`, an "
          "object array) is refused before it can run.",
          "rnetc train specs/cifar_resnet20.rnet --data cifar10 --data-dir suspicious/",
          "Use the official files (or the binary version of the dataset).", False),
    Entry("E804", "the data does not fit the network",
          "The dataset's images or classes do not match the network: the network outputs a "
          "different number of classes, or takes a different number of input channels.",
          "rnetc train specs/cifar_resnet20.rnet --data cifar100",
          "Change the network (`--set classes=100`, `--input 1x32x32`) or the data.", False),
    Entry("E805", "checkpoint or weights cannot be used",
          "A file given to --resume or --weights is missing, is not a weights file or "
          "checkpoint that rnetc can read safely (safetensors, or torch.load with "
          "weights_only=True: a pickle that would run code is refused, never run), or holds "
          "weights of a different network: the message names the first tensor that does not "
          "fit (missing, unexpected, or of another shape, with both shapes).",
          "rnetc export specs/cifar_resnet20.rnet -o r20.onnx --weights resnet18.safetensors",
          "Use weights written for this spec with the same --set and --input options (a run's "
          "OUTPUT_DIR/best.pt, or `rnetc compile -o`).", False),
    Entry("E901", "ONNX export failed",
          "torch.onnx could not export the model, or wrote another opset than the one asked "
          "for (it falls back to opset 18 where it cannot convert to an older one). The "
          "message gives the exporter's reason.",
          "(an exporter failure: none of the shipped specs causes one)",
          "Leave out --opset to use the exporter's default; if the export still fails, please "
          "report the spec.", False),
    Entry("E902", "the ONNX file failed its check",
          "After writing, `rnetc export` checks the file with onnx.checker (full check) and runs "
          "it in onnxruntime on random inputs at batches 1 and 3 (or the fixed --batch), "
          "comparing with PyTorch within rtol 1e-3 / atol 1e-4. A file that fails is renamed "
          "NAME.onnx.failed (open it in Netron to see why) and the command exits 1; an earlier "
          "NAME.onnx is left as it was.",
          "(a file whose onnxruntime output differs from PyTorch's)",
          "Please report the spec with the message. --no-check writes the file without "
          "checking it.", False),
)

BY_CODE = {e.code: e for e in CATALOG}


def explain(code: str) -> str | None:
    entry = BY_CODE.get(code.upper())
    if entry is None:
        return None
    example = "\n".join("    " + line for line in entry.example.splitlines())
    return (f"{entry.code}: {entry.title}\n\n{entry.explanation}\n\nExample:\n\n{example}\n\n"
            f"Fix: {entry.fix}\n")


def markdown() -> str:
    lines = ["# rnetc error codes", "",
             "Every error rnetc reports has a stable code. `rnetc explain CODE` prints the entry; "
             "`--error-format json` gives errors as data. This page is generated from "
             "`resnet_dsl/catalog.py` (`python -m resnet_dsl.catalog > docs/errors.md`); the "
             "rendered message of each example is kept as a golden file under `tests/errors/`.",
             "", "Exit codes: 0 success, 1 errors in the spec (or data), 2 a wrong command line.",
             ""]
    for e in CATALOG:
        fence = "```rnet" if e.example_is_spec else "```text"
        lines += [f"## {e.code}: {e.title}", "", e.explanation, "", fence, e.example, "```",
                  "", f"**Fix.** {e.fix}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
