"""Training data: the sources (`--data`), read from disk and never downloaded, and the two
loaders that feed batches to the device (`gpu_loader` for resident data, `host_loader`
for a DataLoader with workers).

    digits     scikit-learn's bundled handwritten digits (the default: no download)
    cifar10    CIFAR-10 from --data-dir, official binary or python version
    cifar100   CIFAR-100 likewise (fine labels)
    folder     an image-folder tree: --data-dir/train/<class>/, --data-dir/val/<class>/
    synthetic  random images and labels, for throughput
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resnet_dsl.train.data.dataset import Data

SOURCES = ("digits", "cifar10", "cifar100", "folder", "synthetic")
DEFAULT_DATA_DIR = Path("data")


def load_data(name: str, *, input_shape: tuple[int, int, int], num_classes: int,
              data_dir: Path | None = None, synthetic_size: int = 10_000, seed: int = 0) -> Data:
    """Read the source `name` for a network taking `input_shape` and giving `num_classes`.

    `num_classes` only shapes synthetic labels; a mismatch with real data is the
    caller's to report (E804).

    >>> load_data("digits", input_shape=(1, 16, 16), num_classes=10).train.images.shape
    torch.Size([1438, 1, 16, 16])
    """
    if name == "digits":
        from resnet_dsl.train.data import digits
        return digits.load(input_shape)
    if name in ("cifar10", "cifar100"):
        from resnet_dsl.train.data import cifar
        return cifar.load(name, data_dir or DEFAULT_DATA_DIR)
    if name == "folder":
        from resnet_dsl.train.data import folder
        return folder.load(data_dir or DEFAULT_DATA_DIR, input_shape)
    if name == "synthetic":
        from resnet_dsl.train.data import synthetic
        return synthetic.load(input_shape, synthetic_size, num_classes, seed)
    raise ValueError(f"unknown data source {name!r}; choose from {', '.join(SOURCES)}")

