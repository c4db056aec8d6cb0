"""`rnetc predict`: a small run on digits, its test images written as PNGs, and predict's
answers checked against `rnetc eval` and the evaluation pipeline itself; JSON, folders,
plain weights, and the errors (not an image, truncated, missing, another network)."""

from __future__ import annotations

import json

import pytest
from conftest import SPECS, rnetc

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

R20 = SPECS / "cifar_resnet20.rnet"
SHAPE = "3x16x16"           # 3 channels: digits are grey, repeated over them
N = 48                      # --subset: 48 train and 48 test images


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-epoch run of cifar_resnet20 on digits at 3x16x16, and its first N test images
    written as grey PNGs: (run folder, pngs folder, labels)."""
    from resnet_dsl.cli import main
    from resnet_dsl.train.data import load_data

    root = tmp_path_factory.mktemp("predict")
    out = root / "run"
    code = main(["train", str(R20), "--input", SHAPE, "--data", "digits", "--subset", str(N),
                 "-b", "16", "--epochs", "2", "--deterministic", "--device", "cpu",
                 "--no-tensorboard", "--output-dir", str(out), "--print-freq", "1000"])
    assert code == 0
    test = load_data("digits", input_shape=(3, 16, 16), num_classes=10).test.head(N)
    pngs = root / "pngs"
    pngs.mkdir()
    for i in range(N):
        Image.fromarray(test.images[i, 0].numpy(), mode="L").save(pngs / f"{i:03d}.png")
    return out, pngs, test.labels.tolist(), test


def _predict_json(capsys, *argv):
    code, out, err = rnetc(capsys, "predict", R20, "--input", SHAPE, *argv, "--json")
    assert code == 0, err
    return json.loads(out), err


def test_top1_matches_eval(capsys, run):
    out, pngs, labels, test = run
    result, err = _predict_json(capsys, "--weights", out / "best.pt", pngs, "--topk", "1")
    assert err == ""
    top1 = [int(p["top"][0]["class"]) for p in result["predictions"]]
    assert [p["image"] for p in result["predictions"]] == [str(pngs / f"{i:03d}.png") for i in range(N)]
    # rnetc eval on the same images (the run's --subset is eval's default)
    code, printed, _ = rnetc(capsys, "eval", R20, "--input", SHAPE, "--weights", out / "best.pt", "--json")
    assert code == 0
    evaluated = json.loads(printed)
    assert evaluated["images"] == N
    accuracy = sum(p == y for p, y in zip(top1, labels)) / N
    assert accuracy == pytest.approx(evaluated["acc"], abs=1e-9)
    # and image by image, against the evaluation pipeline on the tensors themselves
    from resnet_dsl.backends.torch import build_module
    from resnet_dsl.compiler import compile_network
    from resnet_dsl.train.augment import BatchTransform
    from resnet_dsl.train.evaluate import load_eval_weights

    model = build_module(compile_network(R20, input_shape=(3, 16, 16)), device="cpu")
    info = load_eval_weights(model, out / "best.pt")
    t = BatchTransform(mean=info["data"]["mean"], std=info["data"]["std"], padding=0, hflip=False,
                       device=torch.device("cpu"), size=(16, 16))
    with torch.no_grad():
        probs = model.eval()(t.eval(test.images)).softmax(1)
    assert top1 == probs.argmax(1).tolist()
    first = result["predictions"][0]["top"][0]
    assert first["probability"] == pytest.approx(probs[0].max().item(), rel=1e-5)


def test_json_shape_and_names(capsys, run):
    out, pngs, labels, _ = run
    result, _ = _predict_json(capsys, "--weights", out / "best.pt", pngs / "000.png", pngs / "001.png")
    assert set(result) == {"network", "weights", "transform", "class_names", "predictions"}
    assert result["network"] == "cifar_resnet20" and result["class_names"] is True
    assert result["transform"]["source"] == "checkpoint"
    assert result["transform"]["colour"] == "grey" and result["transform"]["image_size"] == [16, 16]
    assert len(result["predictions"]) == 2
    for p in result["predictions"]:
        assert len(p["top"]) == 5
        assert set(p["top"][0]) == {"index", "class", "probability"}
        probs = [t["probability"] for t in p["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(t["class"] == str(t["index"]) for t in p["top"])   # digits' names are 0-9


def test_human_output_and_rgb_input(capsys, run, tmp_path):
    out, pngs, _, _ = run
    rgb = tmp_path / "rgb.png"
    grey = Image.open(pngs / "005.png")
    Image.merge("RGB", [grey, grey, grey]).save(rgb)   # an RGB file of a grey digit
    code, printed, err = rnetc(capsys, "predict", R20, "--input", SHAPE, "--weights",
                               out / "best.pt", pngs / "005.png", rgb, "-k", "2")
    assert code == 0 and err == ""
    lines = printed.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{pngs / '005.png'}: ")
    assert lines[0].split(": ", 1)[1] == lines[1].split(": ", 1)[1]   # same answer, same numbers
    assert lines[0].count("%") == 2


def test_plain_weights_use_the_default_transform(capsys, run, tmp_path):
    out, pngs, _, _ = run
    from resnet_dsl.train import checkpoint

    plain = tmp_path / "plain.pt"
    torch.save(checkpoint.load(out / "best.pt")["model"], plain)
    code, printed, err = rnetc(capsys, "predict", R20, "--input", SHAPE, "--weights", plain,
                               pngs / "000.png", "--json")
    assert code == 0
    assert "note: " in err and "plain weights" in err and "classes are shown as indices" in err
    result = json.loads(printed)
    assert result["transform"]["source"] == "default" and result["class_names"] is False
    assert result["transform"]["mean"] == [0.485, 0.456, 0.406]


def test_other_input_size_is_noted(capsys, run):
    out, pngs, _, _ = run
    code, _, err = rnetc(capsys, "predict", R20, "--weights", out / "best.pt", pngs / "000.png")
    assert code == 0 and "trained at 16x16" in err and "--input 3x16x16" in err


@pytest.mark.parametrize("content, what", [
    (b"this is not an image", "not an image"),
    (None, "truncated"),
])
def test_unreadable_image_is_e802(capsys, run, tmp_path, content, what):
    out, pngs, _, _ = run
    bad = tmp_path / "bad.png"
    if content is None:
        data = (pngs / "000.png").read_bytes()
        content = data[: len(data) // 2]
    bad.write_bytes(content)
    code, printed, err = rnetc(capsys, "predict", R20, "--input", SHAPE, "--weights",
                               out / "best.pt", pngs / "000.png", bad)
    assert code == 1 and printed == ""
    assert err.startswith(f"error[E802]: {bad}: Pillow cannot read this image"), err
    assert "Traceback" not in err


def test_missing_image_and_empty_folder_are_usage_errors(capsys, run, tmp_path):
    out, _, _, _ = run
    code, _, err = rnetc(capsys, "predict", R20, "--weights", out / "best.pt", tmp_path / "nope.png")
    assert code == 2 and err == f"rnetc predict: error: no such image: {tmp_path / 'nope.png'}\n"
    (tmp_path / "empty").mkdir()
    code, _, err = rnetc(capsys, "predict", R20, "--weights", out / "best.pt", tmp_path / "empty")
    assert code == 2 and "no images in this folder" in err
    code, _, err = rnetc(capsys, "predict", R20, "--weights", tmp_path / "none.pt", tmp_path)
    assert code in (1, 2) and "Traceback" not in err
    code, _, err = rnetc(capsys, "predict", R20, "--weights", out / "best.pt", out, "--topk", "0")
    assert code == 2 and "--topk must be a positive integer" in err


def test_checkpoint_of_another_network_is_e805(capsys, run):
    out, pngs, _, _ = run
    code, printed, err = rnetc(capsys, "predict", SPECS / "cifar_resnet32.rnet", "--input", SHAPE,
                               "--weights", out / "best.pt", pngs / "000.png")
    assert code == 1 and printed == ""
    assert err.startswith(f"error[E805]: {out / 'best.pt'} holds weights of cifar_resnet20, not "
                          "cifar_resnet32"), err
    assert "trained `" in err and "--input 3x16x16" in err and "Traceback" not in err
    # the same network with another head: the tensor that does not fit, and the run's options
    code, _, err = rnetc(capsys, "predict", R20, "--input", SHAPE, "--set", "classes=5",
                         "--weights", out / "best.pt", pngs / "000.png")
    assert code == 1 and err.startswith("error[E805]: ") and "fc.weight" in err


def test_docstring_examples():
    import doctest

    import resnet_dsl.train.predict as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        rnetc(capsys, "predict", "--help")
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for word in ("--weights", "IMAGE", "--topk", "--json", "--ema", "transform", "Plain weights"):
        assert word in text


def test_folder_run_names_its_classes(capsys, tmp_path):
    """A run on an image folder: predict names the class folders and reads RGB with the
    run's (ImageNet) statistics, at the network's size whatever the file's size."""
    import numpy as np

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name, colour in (("cat", 0), ("dog", 2)):
            (tmp_path / "data" / split / name).mkdir(parents=True)
            for i in range(8):
                array = rng.integers(0, 60, (20, 24, 3), dtype=np.uint8)
                array[..., colour] += 180
                Image.fromarray(array).save(tmp_path / "data" / split / name / f"{i}.png")
    out = tmp_path / "run"
    code, _, err = rnetc(capsys, "train", R20, "--input", SHAPE, "--set", "classes=2", "--data", "folder",
                         "--data-dir", tmp_path / "data", "-b", "8", "--epochs", "1", "-j", "0",
                         "--device", "cpu", "--no-tensorboard", "--output-dir", out)
    assert code == 0, err
    code, printed, err = rnetc(capsys, "predict", R20, "--input", SHAPE, "--set", "classes=2",
                               "--weights", out / "best.pt", tmp_path / "data" / "val", "--json")
    assert code == 0, err
    result = json.loads(printed)
    assert result["class_names"] is True and len(result["predictions"]) == 16
    assert result["transform"]["colour"] == "rgb" and result["transform"]["mean"] == [0.485, 0.456, 0.406]
    assert {t["class"] for p in result["predictions"] for t in p["top"]} == {"cat", "dog"}
