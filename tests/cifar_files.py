"""Small CIFAR files in the official formats, written byte by byte, for the reader tests.

The python-format batches of the official archives were pickled by Python 2's cPickle
(protocol 2): their keys and pixel data are Python 2 `str` (SHORT_BINSTRING/BINSTRING
opcodes, which Python 3 reads as bytes with encoding="bytes"), and their array is
rebuilt through `numpy.core.multiarray._reconstruct`. Python 3's pickler cannot write
that (it spells bytes as `_codecs.encode(...)` and names `numpy._core`), so
`py2_pickle` emits the opcodes itself.
"""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np


def _string(b: bytes) -> bytes:  # a Python 2 str
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b
    return b"T" + struct.pack("<I", len(b)) + b


def _int(i: int) -> bytes:
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if 0 <= i < 65536:
        return b"M" + struct.pack("<H", i)
    return b"J" + struct.pack("<i", i)


def _value(v) -> bytes:
    if isinstance(v, bytes):
        return _string(v)
    if isinstance(v, bool):
        return b"\x88" if v else b"\x89"
    if isinstance(v, int):
        return _int(v)
    if isinstance(v, list):
        return b"](" + b"".join(_value(x) for x in v) + b"e"
    if isinstance(v, np.ndarray):
        dtype = v.dtype.str[1:].encode()          # 'u1'
        shape = b"(" + b"".join(_int(s) for s in v.shape) + b"t"
        return (b"cnumpy.core.multiarray\n_reconstruct\n" b"cnumpy\nndarray\n"
                + _int(0) + b"\x85" + _string(b"b") + b"\x87R"
                + b"(" + _int(1) + shape
                + b"cnumpy\ndtype\n" + _string(dtype) + _int(0) + _int(1) + b"\x87R"
                + b"(" + _int(3) + _string(b"|") + b"NNN" + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff"
                + _int(0) + b"tb"
                + b"\x89" + _string(v.tobytes()) + b"tb")
    raise TypeError(type(v))


def py2_pickle(d: dict) -> bytes:
    """A dict pickled the way Python 2's cPickle wrote CIFAR's batches (protocol 2)."""
    body = b"".join(_value(k) + _value(v) for k, v in d.items())
    return b"\x80\x02}(" + body + b"u."


def cifar_arrays(n: int, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            rng.integers(0, classes, n, dtype=np.int64))


def write_cifar10_python(folder, n_train: int = 4, n_test: int = 3) -> dict:
    """cifar-10-batches-py/ with five training batches of n_train and a test batch."""
    root = folder / "cifar-10-batches-py"
    root.mkdir(parents=True)
    written = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = cifar_arrays(n_test if name == "test_batch" else n_train, seed=i)
        (root / name).write_bytes(py2_pickle({
            b"batch_label": f"{name} of 6".encode(), b"labels": [int(v) for v in y],
            b"data": x, b"filenames": [f"img_{j}.png".encode() for j in range(len(y))]}))
        written[name] = (x, y)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    (root / "batches.meta").write_bytes(py2_pickle({b"num_cases_per_batch": 10000,
                                                   b"label_names": names, b"num_vis": 3072}))
    return written


def write_cifar10_binary(folder, n_train: int = 4, n_test: int = 3) -> dict:
    """cifar-10-batches-bin/: records of 1 label byte + 3072 pixel bytes."""
    root = folder / "cifar-10-batches-bin"
    root.mkdir(parents=True)
    written = {}
    for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]):
        x, y = cifar_arrays(n_test if name == "test_batch.bin" else n_train, seed=10 + i)
        records = np.concatenate([y.astype(np.uint8)[:, None], x], axis=1)
        (root / name).write_bytes(records.tobytes())
        written[name] = (x, y)
    (root / "batches.meta.txt").write_text("\n".join(
        "airplane automobile bird cat deer dog frog horse ship truck".split()) + "\n")
    return written


def write_cifar100_binary(folder, n_train: int = 5, n_test: int = 2) -> dict:
    """cifar-100-binary/: records of coarse label, fine label, 3072 pixel bytes."""
    root = folder / "cifar-100-binary"
    root.mkdir(parents=True)
    written = {}
    for i, name in enumerate(["train.bin", "test.bin"]):
        x, fine = cifar_arrays(n_train if name == "train.bin" else n_test, seed=20 + i, classes=100)
        coarse = fine // 5
        records = np.concatenate([coarse.astype(np.uint8)[:, None], fine.astype(np.uint8)[:, None], x], 1)
        (root / name).write_bytes(records.tobytes())
        written[name] = (x, fine)
    return written


def write_cifar100_python(folder, n_train: int = 5, n_test: int = 2) -> dict:
    root = folder / "cifar-100-python"
    root.mkdir(parents=True)
    written = {}
    for i, name in enumerate(["train", "test"]):
        x, fine = cifar_arrays(n_train if name == "train" else n_test, seed=30 + i, classes=100)
        (root / name).write_bytes(py2_pickle({
            b"filenames": [b"f.png"] * len(fine), b"batch_label": b"training batch 1 of 1",
            b"fine_labels": [int(v) for v in fine], b"coarse_labels": [int(v) // 5 for v in fine],
            b"data": x}))
        written[name] = (x, fine)
    return written


class _RunsCode:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def evil_pickle(marker) -> bytes:
    """A CIFAR-looking batch whose unpickling would run `touch marker` (os.system)."""
    return pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0],
                         b"batch_label": _RunsCode(f"touch {marker}")}, protocol=2)
