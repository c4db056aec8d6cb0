"""CIFAR-10 and CIFAR-100 from the user's folder, in either official format; never downloaded.

Binary version (`cifar-10-batches-bin/`, `cifar-100-binary/`): fixed-size records, a
label byte (CIFAR-100: a coarse then a fine label byte) then 3,072 pixel bytes, 1,024
per channel in row-major order. A file's length must be a whole number of records.
Python version (`cifar-10-batches-py/`, `cifar-100-python/`): pickled dicts read through
`safe_pickle` (no arbitrary objects), whose `data` array must be uint8 (N, 3072) and
whose label list must have N entries. Files are looked for in --data-dir and in the
folder the official archive extracts to. Every problem names the file and what was
expected (E801 missing, E802 malformed, E803 unsafe).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from resnet_dsl.errors import error
from resnet_dsl.train.data.dataset import Data, Split, channel_stats
from resnet_dsl.train.data.safe_pickle import load_plain_pickle

PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class Layout:
    """Where one variant keeps its files in one format."""

    folder: str                   # the folder the official archive extracts to
    train: tuple[str, ...]
    test: str
    archive: str                  # the official archive's name, to hint at extracting it
    label_bytes: int = 1          # binary format: bytes of label before the pixels
    label_key: bytes = b"labels"  # python format: the dict key of the labels we use
    meta: str | None = None       # python format: the file with the class names
    meta_key: bytes = b"label_names"
    classes_file: str | None = None  # binary format: the file with the class names


LAYOUTS: dict[str, tuple[Layout, Layout]] = {   # (binary, python)
    "cifar10": (
        Layout("cifar-10-batches-bin", tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
               "test_batch.bin", "cifar-10-binary.tar.gz", classes_file="batches.meta.txt"),
        Layout("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
               "test_batch", "cifar-10-python.tar.gz", meta="batches.meta"),
    ),
    "cifar100": (
        Layout("cifar-100-binary", ("train.bin",), "test.bin", "cifar-100-binary.tar.gz",
               label_bytes=2, classes_file="fine_label_names.txt"),
        Layout("cifar-100-python", ("train",), "test", "cifar-100-python.tar.gz",
               label_key=b"fine_labels", meta="meta", meta_key=b"fine_label_names"),
    ),
}
OFFICIAL_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000)}


def read_binary(path: Path, label_bytes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Read one binary-format file: (uint8 images (N, 3, 32, 32), int64 labels (N,)).

    The last label byte is the label (CIFAR-100's fine label; its coarse one comes first).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "b.bin"
    >>> _ = p.write_bytes(bytes([7]) + bytes(3072))
    >>> images, labels = read_binary(p)
    >>> images.shape, labels.tolist()
    ((1, 3, 32, 32), [7])
    """
    record = label_bytes + PIXELS
    size = path.stat().st_size
    if size == 0 or size % record:
        raise error(
            "E802", f"{path}: {size:,} bytes is not a whole number of {record:,}-byte records "
                    f"({label_bytes} label byte{'s' if label_bytes > 1 else ''} + {PIXELS:,} "
                    "pixel bytes each); the file is truncated or not a CIFAR binary file",
            help="re-extract the dataset from its archive")
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, record)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32), raw[:, label_bytes - 1].astype(np.int64)


def read_python(path: Path, label_key: bytes = b"labels") -> tuple[np.ndarray, np.ndarray]:
    """Read one python-format (pickled) file: (uint8 images (N, 3, 32, 32), int64 labels)."""
    batch = load_plain_pickle(path)
    if not isinstance(batch, dict):
        raise error("E802", f"{path}: expected a pickled dict, found {type(batch).__name__}")
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    data, labels = batch.get(b"data"), batch.get(label_key)
    if data is None or labels is None:
        missing = [k.decode() for k in (b"data", label_key) if batch.get(k) is None]
        raise error("E802", f"{path}: the dict has no {' or '.join(map(repr, missing))} entry "
                            f"(keys: {', '.join(repr(k.decode(errors='replace')) for k in batch)})")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != PIXELS:
        what = (f"a {data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                else type(data).__name__)
        raise error("E802", f"{path}: `data` must be a uint8 array of shape (N, {PIXELS}), "
                            f"found {what}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise error("E802", f"{path}: expected {len(data):,} integer labels (one per image), "
                            f"found {labels.shape[0] if labels.ndim else 0:,} of type {labels.dtype}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _find_files(variant: str, root: Path) -> tuple[Layout, str, Path]:
    """The layout and folder holding a complete copy of the variant's files."""
    if not root.exists():
        raise error("E801", f"no such data folder: {root}",
                    help=f"extract {LAYOUTS[variant][1].archive} (or the binary version) there, "
                         "or pass --data-dir")
    if not root.is_dir():
        raise error("E801", f"--data-dir {root} is a file, not a folder")
    candidates = []
    for layout, fmt in zip(LAYOUTS[variant], ("binary", "python")):
        for folder in (root, root / layout.folder):
            names = (*layout.train, layout.test)
            present = [n for n in names if (folder / n).is_file()]
            if present:
                candidates.append((layout, fmt, folder, [n for n in names if n not in present]))
    complete = [(lay, fmt, folder) for lay, fmt, folder, missing in candidates if not missing]
    if complete:
        return complete[0]
    if candidates:
        layout, fmt, folder, missing = candidates[0]
        raise error("E801", f"{variant} ({fmt} version) in {folder} is incomplete: missing "
                            f"{', '.join(missing)}",
                    help=f"re-extract {layout.archive}")
    archives = [lay.archive for lay in LAYOUTS[variant] if (root / lay.archive).is_file()]
    hint = (f"extract it first: tar xzf {root / archives[0]} -C {root}" if archives else
            f"expected {LAYOUTS[variant][0].train[0]} ... {LAYOUTS[variant][0].test} (binary "
            f"version) or {LAYOUTS[variant][1].train[0]} ... {LAYOUTS[variant][1].test} (python "
            f"version) in {root} or in {root / LAYOUTS[variant][1].folder}")
    raise error("E801", f"no {variant} files in {root}", help=hint)


def _class_names(variant: str, layout: Layout, folder: Path, count: int) -> list[str]:
    names: list[str] = []
    if layout.classes_file and (folder / layout.classes_file).is_file():
        text = (folder / layout.classes_file).read_text(encoding="utf-8", errors="replace")
        names = [line.strip() for line in text.splitlines() if line.strip()]
    elif layout.meta and (folder / layout.meta).is_file():
        meta = load_plain_pickle(folder / layout.meta)
        if isinstance(meta, dict):
            meta = {k.encode() if isinstance(k, str) else k: v for k, v in meta.items()}
            raw = meta.get(layout.meta_key) or []
            names = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in raw]
    if len(names) != count:  # no (or an odd) names file: number the classes
        names = [str(i) for i in range(count)]
    return names


def load(variant: str, root: Path) -> Data:
    """Read CIFAR-10 or CIFAR-100 (`variant`) from `root`, in whichever format is there."""
    layout, fmt, folder = _find_files(variant, root)

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        if fmt == "binary":
            return read_binary(folder / name, layout.label_bytes)
        return read_python(folder / name, layout.label_key)

    parts = [read(n) for n in layout.train]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = read(layout.test)
    num_classes = 10 if variant == "cifar10" else 100
    for name, labels in ((", ".join(layout.train), train_y), (layout.test, test_y)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise error("E802", f"{folder / name.split(',')[0]}: labels must lie in 0..{num_classes - 1}, "
                                f"found {labels.min()}..{labels.max()}",
                        help="is this the other CIFAR variant?")
    expected = OFFICIAL_SIZES[variant]
    notes = []
    if (len(train_y), len(test_y)) != expected:
        notes.append(f"read {len(train_y):,} training and {len(test_y):,} test images from "
                     f"{folder}; the official {variant} has {expected[0]:,} and {expected[1]:,}")
    images = torch.from_numpy(np.ascontiguousarray(train_x))
    mean, std = channel_stats(images)
    return Data(
        name=variant,
        train=Split(torch.from_numpy(train_y), images=images),
        test=Split(torch.from_numpy(test_y), images=torch.from_numpy(np.ascontiguousarray(test_x))),
        classes=_class_names(variant, layout, folder, num_classes),
        image_shape=(3, 32, 32), mean=mean, std=std,
        default_epochs=164,  # 164 x 390 steps of 128 = 64k iterations: the paper's length
        hflip=True, crop_padding=4, notes=notes,
    )
