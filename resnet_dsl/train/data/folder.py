"""An image-folder tree, one subfolder per class, read with Pillow.

    DATA_DIR/train/<class>/*.png|jpg|...    the training split
    DATA_DIR/val/<class>/...                the test split (or DATA_DIR/test/)

Class names are the training subfolders, sorted (torchvision's ImageFolder order).
Images are decoded one at a time in DataLoader workers: converted to RGB (or grey for
a 1-channel network), scaled so the shorter side fits the network's input and centre-
cropped to it, as uint8 CHW tensors; augmentation then runs batched on the device.
Normalisation uses ImageNet's channel statistics. A file Pillow cannot read stops the
run with E802 naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from resnet_dsl.errors import error
from resnet_dsl.train.data.dataset import Data, Split

EXTENSIONS = frozenset(".jpg .jpeg .png .bmp .gif .webp .tif .tiff .ppm .pgm".split())
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DEFAULT_EPOCHS = 90  # torchvision's ImageNet reference


class UnreadableImage(Exception):
    """An image file Pillow cannot decode (raised inside DataLoader workers)."""


def unreadable_message(exc: Exception) -> str:
    """The `path: reason` of an UnreadableImage, also after a DataLoader worker re-raised it
    with its traceback folded into the message."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    last = lines[-1] if lines else str(exc)
    return re.sub(r"^[\w.]*UnreadableImage: ", "", last)


class ImageFiles(torch.utils.data.Dataset):
    """Item i: the i-th file decoded to a uint8 (C, H, W) tensor, and its label."""

    def __init__(self, files: list[Path], labels: list[int], shape: tuple[int, int, int]):
        self.files, self.labels, self.shape = files, labels, shape

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return decode(self.files[i], self.shape), self.labels[i]


def decode(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """Decode, fit the shorter side to (H, W) and centre-crop; uint8 (C, H, W)."""
    from PIL import Image

    c, h, w = shape
    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if c == 3 else "L")
            scale = max(h / img.height, w / img.width)
            size = (max(w, round(img.width * scale)), max(h, round(img.height * scale)))
            if size != img.size:
                img = img.resize(size, Image.Resampling.BILINEAR)
            left, top = (img.width - w) // 2, (img.height - h) // 2
            array = np.array(img.crop((left, top, left + w, top + h)), dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"{path}: Pillow cannot read this image ({exc})") from None
    array = array.reshape(h, w, -1)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _images_by_class(split_dir: Path, classes: list[str] | None) -> tuple[list[Path], list[int], list[str]]:
    found = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not found:
        raise error("E801", f"{split_dir} has no class folders",
                    help=f"put each class's images in its own folder: {split_dir}/<class>/*.png")
    if classes is None:
        classes = found
    else:
        unknown = [name for name in found if name not in classes]
        if unknown:
            raise error("E802", f"{split_dir} has classes the training split lacks: "
                                f"{', '.join(unknown[:5])}")
    files: list[Path] = []
    labels: list[int] = []
    for name in found:
        for path in sorted((split_dir / name).rglob("*")):
            if path.suffix.lower() in EXTENSIONS and path.is_file():
                files.append(path)
                labels.append(classes.index(name))
    if not files:
        raise error("E801", f"no images in the class folders of {split_dir}",
                    help=f"image files end in {', '.join(sorted(EXTENSIONS))}")
    return files, labels, classes


def load(root: Path, input_shape: tuple[int, int, int]) -> Data:
    """The tree under `root` (train/ and val/ or test/), decoded lazily at `input_shape`."""
    c = input_shape[0]
    if c not in (1, 3):
        raise error("E804", f"--data folder gives 1- or 3-channel images; the network takes {c}")
    if not root.is_dir():
        raise error("E801", f"no such data folder: {root}" if not root.exists()
                    else f"--data-dir {root} is a file, not a folder",
                    help="pass --data-dir DIR with DIR/train/<class>/ and DIR/val/<class>/")
    train_dir = root / "train"
    test_dir = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        missing = [str(p) for p, ok in ((train_dir, train_dir.is_dir()),
                                        (root / "val", test_dir is not None)) if not ok]
        raise error("E801", f"{' and '.join(missing)} not found",
                    help=f"an image folder has {root}/train/<class>/ and {root}/val/<class>/ "
                         "(or test/)")
    train_files, train_labels, classes = _images_by_class(train_dir, None)
    test_files, test_labels, _ = _images_by_class(test_dir, classes)
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if c == 3 else ((0.5,), (0.25,))
    return Data(
        name="folder",
        train=Split(torch.tensor(train_labels), dataset=ImageFiles(train_files, train_labels, input_shape)),
        test=Split(torch.tensor(test_labels), dataset=ImageFiles(test_files, test_labels, input_shape)),
        classes=classes, image_shape=input_shape, mean=mean, std=std,
        default_epochs=DEFAULT_EPOCHS, hflip=True, crop_padding=max(1, min(input_shape[1:]) // 8),
    )
