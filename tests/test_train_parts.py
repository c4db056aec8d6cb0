"""The training pipeline's parts against outside references: augmentation against
torchvision's transforms, EMA against torch's AveragedModel, the sampler's shards against
one process, schedules against the paper's numbers; checkpoints against crashes."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
tvf = pytest.importorskip("torchvision.transforms.v2.functional")

from torch import nn  # noqa: E402

from resnet_dsl.train import checkpoint  # noqa: E402
from resnet_dsl.train.augment import BatchTransform, Draw, crop_flip  # noqa: E402
from resnet_dsl.train.config import (  # noqa: E402
    OptionError, TrainConfig, apply_paper_preset, dump_yaml, make_config, read_config_file,
)
from resnet_dsl.train.data.dataset import Split  # noqa: E402
from resnet_dsl.train.data.gpu_loader import DeviceLoader  # noqa: E402
from resnet_dsl.train.data.host_loader import HostLoader  # noqa: E402
from resnet_dsl.train.data.sampler import EpochSampler  # noqa: E402
from resnet_dsl.train.optim import ModelEma, param_groups  # noqa: E402
from resnet_dsl.train.schedule import make_schedule  # noqa: E402

CPU = torch.device("cpu")


# -- augmentation --------------------------------------------------------------------------
@pytest.mark.parametrize("padding, hflip, shape", [(4, True, (3, 32, 32)), (1, False, (1, 8, 8)),
                                                   (2, True, (3, 5, 7)), (0, True, (2, 4, 4))])
def test_crop_flip_equals_torchvision(padding, hflip, shape):
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, *shape), dtype=torch.uint8, generator=gen)
    t = BatchTransform(mean=(0.5,) * shape[0], std=(0.25,) * shape[0], padding=padding,
                       hflip=hflip, device=CPU)
    draw = t.draw(16, gen)
    ours = crop_flip(images, draw, padding)
    for i in range(16):
        ref = tvf.crop(tvf.pad(images[i], [padding] * 4, fill=0), int(draw.oy[i]), int(draw.ox[i]),
                       shape[1], shape[2])
        if hflip and draw.flip[i]:
            ref = tvf.horizontal_flip(ref)
        assert torch.equal(ours[i], ref), i
    if hflip:
        assert 0 < int(draw.flip.sum()) < 16
    assert int(draw.oy.max()) <= 2 * padding


def test_normalisation_equals_torchvision():
    images = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8)
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    t = BatchTransform(mean=mean, std=std, padding=0, hflip=False, device=CPU, channels_last=True)
    ours = t.eval(images)
    ref = tvf.normalize(images.float() / 255, list(mean), list(std))
    assert torch.allclose(ours, ref, atol=1e-5) and ours.is_contiguous(memory_format=torch.channels_last)
    resized = BatchTransform(mean=mean, std=std, padding=0, hflip=False, device=CPU, size=(12, 12))
    assert tuple(resized.eval(images).shape) == (4, 3, 12, 12)


def test_draw_shards_are_the_global_draw():
    t = BatchTransform(mean=(0.0,), std=(1.0,), padding=4, hflip=True, device=CPU)
    d = t.draw(8, torch.Generator().manual_seed(1))
    parts = [d.shard(r, 2) for r in range(2)]
    assert torch.equal(torch.stack([parts[0].ox, parts[1].ox], 1).flatten(), d.ox)
    assert isinstance(parts[0], Draw)


# -- sampling and loading -------------------------------------------------------------------------
@pytest.mark.parametrize("n, batch, world", [(100, 32, 2), (37, 8, 4), (10, 10, 1), (64, 16, 8)])
def test_shards_of_a_step_are_the_single_process_batch(n, batch, world):
    single = EpochSampler(n, batch_size=batch, seed=3)
    shards = [EpochSampler(n, batch_size=batch, rank=r, world_size=world, seed=3) for r in range(world)]
    for s in (single, *shards):
        s.set_epoch(5)
    per_rank = [list(s.batches()) for s in shards]
    for step, whole in enumerate(single.batches()):
        union = torch.cat([per_rank[r][step] for r in range(world)])
        assert sorted(union.tolist()) == sorted(whole.tolist())
        assert all(len(per_rank[r][step]) == batch // world for r in range(world))
    assert len(single) == n // batch


def test_epochs_differ_and_repeat():
    s = EpochSampler(50, batch_size=10, seed=0)
    s.set_epoch(0)
    first = s.perm.clone()
    s.set_epoch(1)
    assert not torch.equal(first, s.perm)
    s.set_epoch(0)
    assert torch.equal(first, s.perm)


@pytest.mark.parametrize("workers", [0, 2])
def test_device_and_dataloader_paths_give_the_same_batches(workers):
    split = Split(torch.arange(40) % 10, images=torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8))
    device_loader = DeviceLoader(split, EpochSampler(40, batch_size=8, seed=2), CPU)
    host_loader = HostLoader(split, EpochSampler(40, batch_size=8, seed=2), CPU, workers=workers)
    for epoch in (0, 1):
        device_loader.set_epoch(epoch)
        host_loader.set_epoch(epoch)
        a = list(device_loader.iterate(start=1))
        b = list(host_loader.iterate(start=1))
        assert len(a) == len(b) == 4
        assert all(torch.equal(x, u) and torch.equal(y, v) for (x, y), (u, v) in zip(a, b))


# -- schedules ------------------------------------------------------------------------------------
def test_paper_schedule_is_the_papers():
    config = TrainConfig(schedule="paper")
    apply_paper_preset(config, steps_per_epoch=390)   # CIFAR-10: 50,000 // 128
    s = make_schedule(config, 390, min(config.epochs * 390, config.max_steps))
    assert (config.lr, config.momentum, config.wd, config.batch_size) == (0.1, 0.9, 1e-4, 128)
    assert config.epochs == 165 and s.total_steps == 64_000
    values = [s.lr(i) for i in (0, 31_999, 32_000, 47_999, 48_000, 63_999)]
    assert values == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


@pytest.mark.parametrize("kind, lr_steps, warmup, probes", [
    ("multistep", None, 0.0, {0: 1.0, 49: 1.0, 50: 0.1, 75: 0.01, 99: 0.01}),
    ("multistep", [2.0], 0.0, {19: 1.0, 20: 0.1, 99: 0.1}),
    ("cosine", None, 1.0, {0: 0.1, 9: 1.0, 10: 1.0, 55: 0.5, 99: 0.5 * (1 + math.cos(math.pi * 89 / 90))}),
])
def test_schedules(kind, lr_steps, warmup, probes):
    config = TrainConfig(schedule=kind, lr=1.0, lr_steps=lr_steps, warmup_epochs=warmup, epochs=10)
    s = make_schedule(config, steps_per_epoch=10, total_steps=100)
    assert {k: s.lr(k) for k in probes} == pytest.approx(probes)


# -- options and config files --------------------------------------------------------------------
@pytest.mark.parametrize("values, words", [
    ({"epochs": 0}, "--epochs must be a positive integer, got 0"),
    ({"batch_size": -3}, "--batch-size must be a positive integer"),
    ({"data": "mnist"}, "--data must be one of"),
    ({"schedule": "cosin"}, "did you mean `cosine`"),
    ({"momentum": 1.0}, "--momentum must be in [0, 1)"),
    ({"label_smoothing": 1.5}, "--label-smoothing"),
    ({"schedule": "paper", "lr_steps": [3.0]}, "--schedule paper fixes the milestones"),
])
def test_impossible_options(values, words):
    with pytest.raises(OptionError, match=None) as info:
        make_config({}, values).check()
    assert words in str(info.value)


@pytest.mark.parametrize("name, text, expected", [
    ("c.yaml", "epochs: 3\nbatch-size: 64\nlr_steps: [1, 2]\nhflip: false\n",
     {"epochs": 3, "batch_size": 64, "lr_steps": [1.0, 2.0], "hflip": False}),
    ("c.json", '{"lr": 1, "model-ema": true}', {"lr": 1.0, "model_ema": True}),
    ("c.yml", "", {}),
])
def test_config_files(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    assert read_config_file(tmp_path / name) == expected


@pytest.mark.parametrize("name, text, words", [
    ("c.yaml", "epoch: 3\n", "unknown option `epoch` (did you mean `epochs`?)"),
    ("c.yaml", "epochs: three\n", "`epochs` must be int"),
    ("c.yaml", "epochs: [\n", "not valid YAML"),
    ("c.json", "{", "not valid JSON"),
    ("c.yaml", "- 1\n", "expected a mapping"),
])
def test_bad_config_files_are_named(tmp_path, name, text, words):
    (tmp_path / name).write_text(text)
    with pytest.raises(OptionError) as info:
        read_config_file(tmp_path / name)
    assert str(tmp_path / name) in str(info.value) and words in str(info.value)


def test_resolved_config_reads_back(tmp_path):
    config = make_config({}, {"epochs": 2, "lr_steps": [1.0], "resume": "x.pt"})
    (tmp_path / "config.yaml").write_text(dump_yaml(config, "header\nline"))
    back = read_config_file(tmp_path / "config.yaml")
    assert back["epochs"] == 2 and back["lr_steps"] == [1.0] and back["resume"] is None
    assert make_config(back, {}).to_dict() == {**config.to_dict(), "resume": None}


def test_paper_schedule_can_stop_early():
    config = TrainConfig(schedule="paper", epochs=10)
    apply_paper_preset(config, steps_per_epoch=390)
    assert (config.epochs, config.max_steps) == (10, 64_000)


# -- optimiser groups and EMA ---------------------------------------------------------------------
def test_weight_decay_groups():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    m(torch.zeros(1, 3, 5, 5))
    groups = param_groups(m, 1e-4, norm_wd=0.0, bias_wd=0.0)
    assert [(len(g["params"]), g["weight_decay"]) for g in groups] == [(2, 1e-4), (2, 0.0), (1, 0.0)]
    assert [len(g["params"]) for g in param_groups(m, 1e-4)] == [5]


def test_ema_equals_torch_averaged_model():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ours = ModelEma(model, decay=0.9)
    ref = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    ref.update_parameters(model)   # the reference's first update copies
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        model(torch.randn(5, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        ours.update(model)
        ref.update_parameters(model)
    for a, b in zip(ours.module.parameters(), ref.module.parameters()):
        assert torch.allclose(a, b, atol=1e-7)
    assert int(ours.module[1].num_batches_tracked) == 3  # integer buffers are copied


# -- checkpoints ----------------------------------------------------------------------------------
def test_random_state_round_trip(tmp_path):
    import random

    import numpy as np

    gen = torch.Generator().manual_seed(7)
    state = checkpoint.rng_state(gen)
    first = (random.random(), np.random.rand(), torch.rand(2).tolist(), torch.rand(2, generator=gen).tolist())
    checkpoint.save({"rng": state, "loop": {}}, tmp_path / "c.pt")
    checkpoint.set_rng_state(checkpoint.load_training(tmp_path / "c.pt")["rng"], gen)
    again = (random.random(), np.random.rand(), torch.rand(2).tolist(), torch.rand(2, generator=gen).tolist())
    assert first == again


def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    checkpoint.save({"value": 1}, target)

    def broken(self, data):
        with open(self, "wb") as f:
            f.write(data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(target), "write_bytes", broken)
    with pytest.raises(OSError):
        checkpoint.save({"value": 2}, target)
    monkeypatch.undo()
    assert checkpoint.load(target)["value"] == 1
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]


def test_not_a_checkpoint(tmp_path):
    from resnet_dsl.errors import RnetError

    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    torch.save({"w": torch.zeros(1)}, tmp_path / "plain.pt")
    for name, words in (("junk.pt", "not a pickle of tensors and plain values only"),
                        ("plain.pt", "not a training checkpoint"),
                        ("missing.pt", "no such checkpoint")):
        with pytest.raises(RnetError) as info:
            checkpoint.load_training(tmp_path / name)
        assert info.value.codes == ["E805"] and words in info.value.diagnostics[0].message


SAVER = """
import sys, torch
from resnet_dsl.train import checkpoint
i = 0
print("ready", flush=True)
while True:
    i += 1
    checkpoint.save({"i": i, "w": torch.full((1 << 21,), float(i))}, sys.argv[1])
"""


@pytest.mark.parametrize("delay", [0.05, 0.23])
def test_sigkill_while_saving_leaves_a_whole_checkpoint(tmp_path, delay):
    """Kill a process that rewrites an 8 MiB checkpoint in a loop, at arbitrary moments:
    the file always loads and is one complete version."""
    target = tmp_path / "last.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.time() + 60
    while not target.exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = checkpoint.load(target)
    assert state["i"] >= 1 and bool((state["w"] == state["i"]).all())
    leftovers = checkpoint.remove_partials(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]
    assert all(p.name.startswith(".last.pt.") for p in leftovers)


def test_a_checkpoint_that_would_run_code_is_refused_without_advice_to_run_it(tmp_path):
    """torch's message suggests retrying with weights_only=False; rnetc never repeats that."""
    import os as os_module

    from resnet_dsl.errors import RnetError

    class RunsCode:
        def __reduce__(self):
            return (os_module.system, ("touch " + str(tmp_path / "ran"),))

    torch.save({"format": checkpoint.FORMAT, "model": RunsCode()}, tmp_path / "last.pt")
    with pytest.raises(RnetError) as info:
        checkpoint.load_training(tmp_path / "last.pt")
    assert not (tmp_path / "ran").exists()
    text = info.value.render()
    assert info.value.codes == ["E805"] and "nothing in it was run" in text
    assert "system" in text   # what the file asked for
    assert "weights_only=False" not in text and "set to `False`" not in text
