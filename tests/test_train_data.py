"""The data sources: CIFAR in both official formats (and damaged or malicious copies),
image folders, digits and synthetic data, and the errors for missing data."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from cifar_files import (
    evil_pickle, py2_pickle, write_cifar10_binary, write_cifar10_python, write_cifar100_binary,
    write_cifar100_python,
)

torch = pytest.importorskip("torch")

from resnet_dsl.errors import RnetError  # noqa: E402
from resnet_dsl.train.data import load_data  # noqa: E402
from resnet_dsl.train.data.cifar import read_binary, read_python  # noqa: E402
from resnet_dsl.train.data.safe_pickle import load_plain_pickle  # noqa: E402


def _images(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, 3, 32, 32)


# -- CIFAR: the two official formats, both variants ----------------------------------------
@pytest.mark.parametrize("variant, writer, train_names, test_name", [
    ("cifar10", write_cifar10_python, [f"data_batch_{k}" for k in range(1, 6)], "test_batch"),
    ("cifar10", write_cifar10_binary, [f"data_batch_{k}.bin" for k in range(1, 6)], "test_batch.bin"),
    ("cifar100", write_cifar100_python, ["train"], "test"),
    ("cifar100", write_cifar100_binary, ["train.bin"], "test.bin"),
])
def test_cifar_reads_official_formats(tmp_path, variant, writer, train_names, test_name):
    written = writer(tmp_path)
    data = load_data(variant, input_shape=(3, 32, 32), num_classes=10, data_dir=tmp_path)
    train_x = np.concatenate([written[n][0] for n in train_names])
    train_y = np.concatenate([written[n][1] for n in train_names])
    assert torch.equal(data.train.images, torch.from_numpy(_images(train_x)))
    assert data.train.labels.tolist() == train_y.tolist()
    assert torch.equal(data.test.images, torch.from_numpy(_images(written[test_name][0])))
    assert data.test.labels.tolist() == written[test_name][1].tolist()
    assert data.num_classes == (10 if variant == "cifar10" else 100)
    assert data.image_shape == (3, 32, 32) and data.hflip and data.crop_padding == 4
    assert any("official" in note for note in data.notes)  # not 50,000 images: said once
    if variant == "cifar10":
        assert data.classes[:2] == ["airplane", "automobile"]
    # the pixel layout: 1024 red, then green, then blue bytes, each row-major
    assert data.train.images[0, 1, 0, 0].item() == train_x[0, 1024]
    assert data.train.images[0, 2, 31, 31].item() == train_x[0, 3071]


def test_cifar_data_dir_may_be_the_extracted_folder_itself(tmp_path):
    write_cifar10_binary(tmp_path)
    data = load_data("cifar10", input_shape=(3, 32, 32), num_classes=10,
                     data_dir=tmp_path / "cifar-10-batches-bin")
    assert len(data.train) == 20 and len(data.test) == 3


def test_channel_statistics_of_cifar_match_numpy(tmp_path):
    written = write_cifar10_binary(tmp_path)
    data = load_data("cifar10", input_shape=(3, 32, 32), num_classes=10, data_dir=tmp_path)
    x = np.concatenate([written[f"data_batch_{k}.bin"][0] for k in range(1, 6)])
    x = _images(x).astype(np.float64) / 255
    assert np.allclose(data.mean, x.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(data.std, x.std(axis=(0, 2, 3)), atol=1e-6)


# -- damaged and malicious files --------------------------------------------------------------
def _truncate(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("fmt, name, keep, code, words", [
    ("binary", "data_batch_3.bin", 3073 * 2 + 100, "E802", "not a whole number of 3,073-byte records"),
    ("binary", "test_batch.bin", 0, "E802", "0 bytes"),
    ("python", "data_batch_2", 500, "E802", "truncated"),
    ("python", "test_batch", 0, "E802", "truncated"),
])
def test_truncated_files_are_named(tmp_path, fmt, name, keep, code, words):
    writer = write_cifar10_binary if fmt == "binary" else write_cifar10_python
    writer(tmp_path)
    folder = tmp_path / ("cifar-10-batches-bin" if fmt == "binary" else "cifar-10-batches-py")
    _truncate(folder / name, keep)
    with pytest.raises(RnetError) as info:
        load_data("cifar10", input_shape=(3, 32, 32), num_classes=10, data_dir=tmp_path)
    d = info.value.diagnostics[0]
    assert d.code == code
    assert str(folder / name) in d.message and words in d.message


@pytest.mark.parametrize("batch, words", [
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "expected 2 integer labels"),
    ({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}, "shape (N, 3072)"),
    ({b"data": np.zeros((2, 3072), np.int64), b"labels": [1, 2]}, "uint8"),
    ({b"labels": [1, 2]}, "no 'data'"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [11]}, "labels must lie in 0..9"),
])
def test_inconsistent_python_batches(tmp_path, batch, words):
    write_cifar10_python(tmp_path)
    target = tmp_path / "cifar-10-batches-py" / "test_batch"
    target.write_bytes(py2_pickle(batch))
    with pytest.raises(RnetError) as info:
        load_data("cifar10", input_shape=(3, 32, 32), num_classes=10, data_dir=tmp_path)
    assert info.value.codes == ["E802"] and words in info.value.diagnostics[0].message


def test_malicious_pickle_is_refused_without_running(tmp_path):
    write_cifar10_python(tmp_path)
    marker = tmp_path / "PWNED"
    target = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    target.write_bytes(evil_pickle(marker))
    # the file really would run the command if unpickled naively
    probe = tmp_path / "probe"
    pickle.loads(evil_pickle(probe))
    assert probe.exists()
    with pytest.raises(RnetError) as info:
        load_data("cifar10", input_shape=(3, 32, 32), num_classes=10, data_dir=tmp_path)
    d = info.value.diagnostics[0]
    assert d.code == "E803" and str(target) in d.message and "system" in d.message
    assert not marker.exists()


@pytest.mark.parametrize("payload, what", [
    # an object array could carry anything: its dtype is refused
    (pickle.dumps({b"data": np.array([None, 1], dtype=object)}, protocol=2), "dtype 'O8'"),
    # any other global, even a harmless-looking one
    (pickle.dumps({b"data": bytearray(b"x")}, protocol=2), "bytearray"),
    (b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1q\x00\x85R.", "builtins.eval"),
])
def test_restricted_unpickler_admits_plain_data_only(tmp_path, payload, what):
    path = tmp_path / "batch"
    path.write_bytes(payload)
    with pytest.raises(RnetError) as info:
        load_plain_pickle(path)
    assert info.value.codes == ["E803"] and what in info.value.diagnostics[0].message


def test_python3_repickled_batch_is_accepted(tmp_path):
    x = np.arange(3072 * 2, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": x, "labels": [3, 4]}, protocol=2))
    images, labels = read_python(path)
    assert (images.reshape(2, -1) == x).all() and labels.tolist() == [3, 4]


def test_read_binary_cifar100_takes_the_fine_label(tmp_path):
    path = tmp_path / "t.bin"
    path.write_bytes(bytes([3, 17]) + bytes(range(256)) * 12)
    images, labels = read_binary(path, label_bytes=2)
    assert labels.tolist() == [17] and images[0, 0, 0, :3].tolist() == [0, 1, 2]


# -- missing data ------------------------------------------------------------------------------
@pytest.mark.parametrize("setup, source, words", [
    (lambda p: None, "cifar10", "no such data folder"),
    (lambda p: p.mkdir(), "cifar10", "no cifar10 files in"),
    (lambda p: p.mkdir(), "cifar100", "no cifar100 files in"),
    (lambda p: p.write_text("x"), "cifar10", "is a file, not a folder"),
    (lambda p: p.mkdir(), "folder", "train and "),
    (lambda p: None, "folder", "no such data folder"),
])
def test_missing_data_is_named(tmp_path, setup, source, words):
    target = tmp_path / "data"
    setup(target)
    with pytest.raises(RnetError) as info:
        load_data(source, input_shape=(3, 32, 32), num_classes=10, data_dir=target)
    d = info.value.diagnostics[0]
    assert d.code == "E801" and str(target) in d.message and words in d.message


def test_incomplete_cifar_names_the_missing_file(tmp_path):
    write_cifar10_binary(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "data_batch_4.bin").unlink()
    with pytest.raises(RnetError) as info:
        load_data("cifar10", input_shape=(3, 32, 32), num_classes=10, data_dir=tmp_path)
    assert "missing data_batch_4.bin" in info.value.diagnostics[0].message


def test_unextracted_archive_gets_a_hint(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(RnetError) as info:
        load_data("cifar10", input_shape=(3, 32, 32), num_classes=10, data_dir=tmp_path)
    assert "tar xzf" in info.value.diagnostics[0].help


# -- image folders -------------------------------------------------------------------------------
def _write_folder(root, classes=("cat", "dog"), per_class=3, size=(20, 12)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.png")


def test_folder_decodes_fits_and_labels(tmp_path):
    _write_folder(tmp_path)
    data = load_data("folder", input_shape=(3, 8, 8), num_classes=2, data_dir=tmp_path)
    assert data.classes == ["cat", "dog"] and len(data.train) == 6 and not data.train.resident
    image, label = data.train.dataset[4]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 8, 8) and label == 1
    grey = load_data("folder", input_shape=(1, 8, 8), num_classes=2, data_dir=tmp_path)
    assert tuple(grey.test.dataset[0][0].shape) == (1, 8, 8)


def test_folder_unreadable_image_is_named(tmp_path):
    from resnet_dsl.train.data.folder import UnreadableImage

    _write_folder(tmp_path)
    bad = tmp_path / "train" / "dog" / "1.png"
    bad.write_bytes(b"not a png")
    data = load_data("folder", input_shape=(3, 8, 8), num_classes=2, data_dir=tmp_path)
    with pytest.raises(UnreadableImage, match=str(bad)):
        data.train.dataset[4]


def test_folder_with_unknown_test_class(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "val" / "emu").mkdir()
    with pytest.raises(RnetError) as info:
        load_data("folder", input_shape=(3, 8, 8), num_classes=2, data_dir=tmp_path)
    assert "emu" in info.value.diagnostics[0].message


# -- digits and synthetic --------------------------------------------------------------------------
def test_digits_match_scikit_learn():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data = load_data("digits", input_shape=(1, 8, 8), num_classes=10)
    expected = np.round(bunch.images[4::5] / 16 * 255).astype(np.uint8)   # the test split
    assert (data.test.images[:, 0].numpy() == expected).all()
    assert data.test.labels.tolist() == bunch.target[4::5].tolist()
    assert len(data.train) + len(data.test) == 1797 and not data.hflip
    big = load_data("digits", input_shape=(3, 32, 32), num_classes=10)
    assert tuple(big.train.images.shape[1:]) == (3, 32, 32) and big.crop_padding == 2
    assert torch.equal(big.train.images[:, 0], big.train.images[:, 2])  # grey, repeated


def test_digits_file_reader_equals_load_digits_and_falls_back(monkeypatch, tmp_path):
    """The digits are read from scikit-learn's csv without importing it; should the file
    move, load_digits() gives the same tensors."""
    import importlib.util

    from sklearn.datasets import load_digits

    from resnet_dsl.train.data import digits

    bunch = load_digits()
    images, labels = digits._digits()
    assert images.dtype == torch.uint8 and (images.numpy() == bunch.images).all()
    assert labels.tolist() == bunch.target.tolist()
    real = importlib.util.find_spec("sklearn")
    moved = importlib.util.spec_from_file_location("sklearn", tmp_path / "__init__.py",
                                                   submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: moved if name == "sklearn" else real)
    again, again_labels = digits._digits()
    assert torch.equal(again, images) and torch.equal(again_labels, labels)


def test_synthetic_is_seeded():
    a = load_data("synthetic", input_shape=(3, 4, 4), num_classes=7, synthetic_size=10, seed=1)
    b = load_data("synthetic", input_shape=(3, 4, 4), num_classes=7, synthetic_size=10, seed=1)
    assert torch.equal(a.train.images, b.train.images) and a.num_classes == 7
    assert int(a.train.labels.max()) < 7 and len(a.test) == 2
