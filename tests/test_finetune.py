"""Fine-tuning: `--weights` (every file layout, strict and head-replacing loads, the report
line, errors for weights that do not fit), `--freeze` (frozen tensors and BatchNorm
statistics bit-identical after training, no optimiser state), `--head-lr`, learning on
digits, and an interrupted fine-tuning run resuming bit-identically.

No network: the "pretrained" files are made here (torchvision's resnet18() with a fixed
seed, a short digits run). Runs are tiny (cifar_resnet20 at 1x16x16, a subset of digits).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import REPO, SPECS, rnetc

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from safetensors.torch import save_file  # noqa: E402
from test_errors_golden import check_golden  # noqa: E402

from resnet_dsl.backends.torch import build_module  # noqa: E402
from resnet_dsl.backends.torch.weights import read_state_dict  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.errors import RnetError  # noqa: E402
from resnet_dsl.train import OptionError, TrainConfig, checkpoint, train  # noqa: E402
from resnet_dsl.train.finetune import head_modules, load_pretrained, plan_freeze  # noqa: E402
from resnet_dsl.train.loop import Loop  # noqa: E402
from resnet_dsl.train.optim import make_optimizer, set_lr  # noqa: E402

R18 = SPECS / "resnet18.rnet"
R20 = SPECS / "cifar_resnet20.rnet"
ERRORS = REPO / "tests" / "errors"
SMALL = dict(data="digits", subset=96, batch_size=16, device="cpu", print_freq=1000,
             tensorboard=False, deterministic=True)


@pytest.fixture(scope="module")
def tv18():
    torch.manual_seed(0)
    return torchvision.models.resnet18().state_dict()


def r18(classes: int = 1000, input_shape=None):
    net = compile_network(R18, params={"classes": classes}, input_shape=input_shape)
    torch.manual_seed(1)
    return net, build_module(net)


# -- reading and loading -------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["pth", "state_dict", "model", "model_ema", "safetensors",
                                    "ddp", "rnetc_checkpoint"])
def test_every_layout_loads_strictly(layout, tv18, tmp_path):
    path = tmp_path / ("w.safetensors" if layout == "safetensors" else "w.pth")
    if layout == "pth":
        torch.save(tv18, path)
    elif layout == "state_dict":    # timm's train.py
        torch.save({"epoch": 3, "arch": "resnet18", "state_dict": tv18, "optimizer": {}}, path)
    elif layout == "model":         # torchvision's reference scripts
        torch.save({"model": tv18, "optimizer": {}, "epoch": 3, "args": {}}, path)
    elif layout == "model_ema":     # an AveragedModel: `module.` names and its counter
        torch.save({"model_ema": {"n_averaged": torch.tensor(7),
                                  **{f"module.{k}": v for k, v in tv18.items()}}}, path)
    elif layout == "safetensors":
        save_file({k: v.contiguous() for k, v in tv18.items()}, str(path))
    elif layout == "ddp":
        torch.save({f"module.{k}": v for k, v in tv18.items()}, path)
    else:
        torch.save({"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "model": tv18}, path)
    net, model = r18()
    report = load_pretrained(model, path, net=net)
    assert report.describe() == f"loaded {len(tv18)} tensors (all of the network's)"
    assert all(torch.equal(model.state_dict()[k], v) for k, v in tv18.items())


def test_other_classes_replace_the_head_and_say_so(tv18, tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(tv18, path)
    net, model = r18(classes=10)
    fresh_fc = model.fc.weight.detach().clone()
    report = load_pretrained(model, path, net=net)
    assert report.describe() == f"loaded {len(tv18) - 2} tensors; new: fc.weight [10, 512], fc.bias [10]"
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in tv18.items() if not k.startswith("fc."))
    assert torch.equal(model.fc.weight, fresh_fc)  # as initialised


def test_the_head_is_the_networks_head_section_not_a_name(tmp_path):
    spec = tmp_path / "n.rnet"
    spec.write_text("network n(classes = 3) {\n  input 1x8x8\n  stem {\n    conv 3x3 4\n    bn\n"
                    "    relu\n  }\n  stage x1 basic(4)\n  head {\n    avgpool global\n    flatten\n"
                    "    fc classes as classifier\n  }\n}\n", encoding="utf-8")
    net = compile_network(spec)
    model = build_module(net)
    assert head_modules(model, net)[-1] == "classifier"
    other = build_module(compile_network(spec, params={"classes": 5})).state_dict()
    torch.save(other, tmp_path / "w.pt")
    report = load_pretrained(model, tmp_path / "w.pt", net=net)
    assert report.describe().endswith("new: classifier.weight [3, 4], classifier.bias [3]")


# -- what does not fit ---------------------------------------------------------------------------
def _error(model, net, path) -> RnetError:
    with pytest.raises(RnetError) as info:
        load_pretrained(model, path, net=net)
    assert info.value.codes == ["E805"]
    return info.value


def test_a_missing_backbone_tensor_is_an_error_listing_both_sides(tv18, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = {("head." + k if k.startswith("fc.") else k): v for k, v in tv18.items()}
    state["layer2.0.downsample.2.weight"] = state.pop("layer2.0.downsample.1.weight")
    del state["layer4.1.bn2.running_var"]
    torch.save({"state_dict": state}, "timm_style.pth")
    net, model = r18(classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    err = _error(model, net, "timm_style.pth")
    text = err.render()
    assert "missing from the file" in text and "in the file, not in the network" in text
    assert "layer4.1.bn2.running_var [512]" in text and "head.fc.weight [1000, 512]" in text
    assert "`head.fc` (timm)" in text and "`downsample` indices differ" in text
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # nothing loaded
    check_golden(ERRORS / "E805_finetune_does_not_fit.expected", text + "\n")


def test_a_shape_that_differs_outside_the_head_is_an_error(tv18, tmp_path):
    torch.save(tv18, tmp_path / "r18.pth")
    net, model = r18(input_shape=(1, 64, 64))       # conv1 takes 1 channel here
    text = _error(model, net, tmp_path / "r18.pth").render()
    assert "`conv1.weight` is [64, 3, 7, 7] in the file, the network needs [64, 1, 7, 7]" in text


def test_a_prefix_is_named(tv18, tmp_path):
    torch.save({f"model.{k}": v for k, v in tv18.items()}, tmp_path / "lightning.pth")
    net, model = r18()
    text = _error(model, net, tmp_path / "lightning.pth").render()
    assert "the file's names start with `model.`" in text


def test_cli_errors_are_messages_with_codes(tv18, tmp_path, capsys):
    torch.save(tv18, tmp_path / "r18.pth")
    code, out, err = rnetc(capsys, "train", R20, "--weights", tmp_path / "r18.pth", "--input",
                           "1x16x16", "--output-dir", tmp_path / "r", "--device", "cpu")
    assert code == 1 and "error[E805]" in err and "Traceback" not in err
    assert "missing from the file" in err
    code, out, err = rnetc(capsys, "train", R20, "--freeze", "layer9", "--input", "1x16x16",
                           "--output-dir", tmp_path / "r", "--device", "cpu", "--epochs", "1")
    assert code == 2 and "--freeze layer9" in err and "layer3" in err and "Traceback" not in err
    code, out, err = rnetc(capsys, "compile", R20, "--weights", tmp_path / "r18.pth")
    assert code == 2 and "--weights is a training option: add --train" in err


# -- freezing and training -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """cifar_resnet20 at 1x16x16, 3 short epochs on digits; the full checkpoint, and its
    backbone alone (no head: as a Keras include_top=False file) as safetensors."""
    folder = tmp_path_factory.mktemp("pretrained")
    net = compile_network(R20, input_shape=(1, 16, 16))
    train(TrainConfig(**{**SMALL, "subset": 640, "batch_size": 64}, epochs=3, seed=5,
                      output_dir=str(folder / "run")), net)
    state = checkpoint.load_training(folder / "run" / "last.pt")["model"]
    save_file({k: v.contiguous() for k, v in state.items() if not k.startswith("fc.")},
              str(folder / "backbone.safetensors"))
    torch.save({f"module.{k}": v for k, v in state.items()}, folder / "ddp.pth")
    return folder, state


def test_freeze_backbone_keeps_every_frozen_tensor_and_trains_the_head(pretrained, tmp_path, capsys):
    folder, state = pretrained
    result = train(TrainConfig(**SMALL, epochs=1, weights=str(folder / "ddp.pth"), freeze="backbone",
                               head_lr=0.05, output_dir=str(tmp_path / "ft")),
                   compile_network(R20, input_shape=(1, 16, 16)))
    out = capsys.readouterr().out
    assert f"weights {folder / 'ddp.pth'}: loaded {len(state)} tensors (all of the network's)" in out
    total = sum(t.numel() for k, t in state.items() if k.endswith(("weight", "bias")))
    assert f"trains 650 of {total:,} parameters (the head: avgpool, flatten, fc; the backbone " \
           "frozen, its BatchNorm statistics fixed); head learning rate 0.05" in out
    after = result.model.state_dict()
    for name, tensor in state.items():
        if name.startswith("fc."):
            assert not torch.equal(after[name], tensor), name
        else:  # weights, and BatchNorm's running statistics and counters
            assert torch.equal(after[name], tensor), name
    saved = checkpoint.load_training(tmp_path / "ft" / "last.pt")
    assert len(saved["optimizer"]["state"]) == 2   # momentum of fc.weight and fc.bias only
    assert saved["config"]["freeze"] == "backbone" and saved["config"]["head_lr"] == 0.05


def test_freeze_a_stage_freezes_it_and_everything_before(pretrained, tmp_path):
    folder, state = pretrained
    result = train(TrainConfig(**SMALL, epochs=1, weights=str(folder / "backbone.safetensors"),
                               freeze="layer2", output_dir=str(tmp_path / "ft")),
                   compile_network(R20, input_shape=(1, 16, 16)))
    after = result.model.state_dict()
    frozen = ("conv1.", "bn1.", "layer1.", "layer2.")
    for name, tensor in state.items():
        if name.startswith(frozen):
            assert torch.equal(after[name], tensor), name
        elif name.startswith("layer3.") and name.endswith(("weight", "running_mean")):
            assert not torch.equal(after[name], tensor), name


def test_head_lr_is_a_parameter_group_on_the_schedule():
    net = compile_network(R20, input_shape=(1, 16, 16))
    model = build_module(net)
    plan = plan_freeze(model, "layer1", head_modules(model, net))
    config = TrainConfig(lr=0.1, head_lr=0.5, wd=1e-4, bias_weight_decay=0.0)
    optimizer = make_optimizer(model, config, torch.device("cpu"), head=plan.head_parameters(model))
    set_lr(optimizer, 0.02)
    head = {id(model.fc.weight), id(model.fc.bias)}
    for group in optimizer.param_groups:
        is_head = {id(p) for p in group["params"]} <= head
        assert group["lr"] == pytest.approx(0.1 if is_head else 0.02)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    with pytest.raises(OptionError, match="nothing would train"):
        plan_freeze(model, "fc", head_modules(model, net))


def test_the_head_learns_on_a_frozen_backbone(pretrained, tmp_path):
    folder, _ = pretrained
    # head_lr 0.03: at the default 0.1 the head of this weak 3-epoch backbone diverged on
    # some CPUs (loss 8.3 -> 8.7 on this VM; float rounding differs between CPU kinds)
    result = train(TrainConfig(**{**SMALL, "subset": 640, "batch_size": 64}, epochs=2, head_lr=0.03,
                               weights=str(folder / "backbone.safetensors"), freeze="backbone",
                               output_dir=str(tmp_path / "ft")),
                   compile_network(R20, input_shape=(1, 16, 16)))
    losses = [row["train_loss"] for row in result.rows]
    assert losses[1] < losses[0] and result.rows[-1]["test_acc"] > 0.2, result.rows  # chance: 0.1


# -- resume ----------------------------------------------------------------------------------------
def test_an_interrupted_fine_tuning_run_resumes_bit_identically(pretrained, tmp_path, monkeypatch):
    folder, _ = pretrained
    net = compile_network(R20, input_shape=(1, 16, 16))
    options = dict(**SMALL, epochs=2, weights=str(folder / "backbone.safetensors"), freeze="layer1",
                   head_lr=0.3, model_ema=True)
    full = train(TrainConfig(**options, output_dir=str(tmp_path / "full")), net)
    assert full.completed

    original = Loop._step

    def step_then_ctrl_c(self, x, y):
        out = original(self, x, y)
        if self.state.step + 1 == 9:       # mid epoch 2
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(Loop, "_step", step_then_ctrl_c)
    assert not train(TrainConfig(**options, output_dir=str(tmp_path / "part")), net).completed
    monkeypatch.undo()
    with pytest.raises(OptionError, match="keeps the settings it started with"):
        train(TrainConfig(**{**options, "freeze": "layer2"}, output_dir=str(tmp_path / "part"),
                          resume="auto"), net)
    # the resumed command leaves out the fine-tuning options: the checkpoint's are used
    plain = {k: v for k, v in options.items() if k not in ("weights", "freeze", "head_lr")}
    assert train(TrainConfig(**plain, output_dir=str(tmp_path / "part"), resume="auto"), net).completed
    a = checkpoint.load_training(tmp_path / "full" / "last.pt")
    b = checkpoint.load_training(tmp_path / "part" / "last.pt")
    for key in ("model", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for i, s in a["optimizer"]["state"].items():
        assert torch.equal(s["momentum_buffer"], b["optimizer"]["state"][i]["momentum_buffer"])
    assert [r["test_acc"] for r in a["loop"]["history"]] == [r["test_acc"] for r in b["loop"]["history"]]
    assert b["config"]["freeze"] == "layer1" and b["config"]["head_lr"] == 0.3


def test_compile_train_takes_the_same_weights(pretrained, tmp_path, capsys):
    folder, _ = pretrained
    code, out, err = rnetc(capsys, "compile", R20, "--input", "1x16x16", "--train", "--weights",
                           folder / "backbone.safetensors", "--freeze", "backbone", "--epochs", "1",
                           "--subset", "64", "-b", "32", "--device", "cpu", "--no-tensorboard",
                           "--output-dir", tmp_path / "c", "-o", tmp_path / "w.safetensors")
    assert code == 0, err
    assert "new: fc.weight [10, 64], fc.bias [10]" in out and "trains 650 of" in out
    assert Path(tmp_path / "w.safetensors").exists()
    assert read_state_dict(tmp_path / "w.safetensors")["conv1.weight"].shape == (16, 1, 3, 3)
