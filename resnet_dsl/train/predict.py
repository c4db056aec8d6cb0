"""`rnetc predict`: the classes a trained network gives images on disk.

An image goes through the transform the run evaluated with, which its checkpoints carry
(`eval_transform` in their `data`, written by `train()`): decoded by Pillow as RGB, or
as grey repeated over the network's channels (digits, 1-channel data); the shorter side
fitted to the run's image size (bilinear) and the centre cropped to it, as image-folder
data is read; scaled to 0..1 and normalised with the run's mean and standard deviation;
resized bilinearly to the network's input where that differs (CIFAR's 32x32 for a larger
network). An image the run's data already had at that size (a digits test image written
as a PNG at the network's size) thus reaches the network exactly as `rnetc eval` feeds it.

Plain weights carry no transform: then the image is fitted and centre-cropped to the
spec's input size, and normalised with ImageNet's statistics (RGB) or mean 0.5 / std 0.25
(1 channel), the defaults of `--data folder`; classes are shown as indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from resnet_dsl.errors import error
from resnet_dsl.train.data.folder import (EXTENSIONS, IMAGENET_MEAN, IMAGENET_STD,
                                          UnreadableImage, decode)

GREY_MEAN, GREY_STD = (0.5,), (0.25,)


@dataclass(frozen=True)
class ImageTransform:
    """How an image file becomes the network's input (see the module's docstring)."""

    colour: str                          # "rgb" or "grey"
    channels: int                        # the network's input channels
    image_size: tuple[int, int]          # fit the shorter side, centre-crop (H, W)
    input_size: tuple[int, int]          # the network's input (H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = "checkpoint"           # "checkpoint", or "default" for plain weights

    def to_dict(self) -> dict:
        return {"colour": self.colour, "channels": self.channels,
                "image_size": list(self.image_size), "input_size": list(self.input_size),
                "mean": list(self.mean), "std": list(self.std), "source": self.source}

    def describe(self) -> str:
        h, w = self.image_size
        words = f"{self.colour}, shorter side fitted to {h}x{w} and centre-cropped"
        if tuple(self.input_size) != tuple(self.image_size):
            words += f", resized to {self.input_size[0]}x{self.input_size[1]}"
        mean = ", ".join(f"{v:.4g}" for v in self.mean)
        std = ", ".join(f"{v:.4g}" for v in self.std)
        return f"{words}; mean ({mean}), std ({std})"


def default_transform(input_shape: tuple[int, int, int]) -> ImageTransform:
    """The transform for plain weights: the spec's input size, folder data's statistics.

    >>> default_transform((3, 224, 224)).describe()
    'rgb, shorter side fitted to 224x224 and centre-cropped; mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)'
    """
    c, h, w = input_shape
    if c not in (1, 3):
        raise error("E804", f"the network takes {c}-channel input; images give 1 (grey) or 3 (RGB) "
                            "channels", help="--input 3xHxW or 1xHxW changes the network's input")
    rgb = c == 3
    return ImageTransform("rgb" if rgb else "grey", c, (h, w), (h, w),
                          IMAGENET_MEAN if rgb else GREY_MEAN, IMAGENET_STD if rgb else GREY_STD,
                          source="default")


def checkpoint_transform(data: dict, input_shape: tuple[int, int, int]) -> ImageTransform:
    """The transform a training checkpoint's `data` records (`eval_transform`; older
    checkpoints: derived from the data's name, image shape and statistics, as then run)."""
    c, h, w = input_shape
    saved = data.get("eval_transform") or {}
    image_shape = data.get("image_shape") or [c, h, w]
    colour = saved.get("colour") or ("grey" if data.get("name") == "digits" or image_shape[0] == 1
                                     else "rgb")
    image_size = tuple(saved.get("image_size") or image_shape[1:])
    mean, std = tuple(saved.get("mean") or data["mean"]), tuple(saved.get("std") or data["std"])
    if colour == "rgb" and c != 3 or colour == "grey" and len(mean) not in (1, c):
        raise error("E804", f"the run read {colour} images with {len(mean)} channels; the network "
                            f"takes {c}", help="predict with the --input of the run that wrote it")
    if colour == "grey" and len(mean) == 1 and c > 1:
        mean, std = mean * c, std * c
    return ImageTransform(colour, c, (int(image_size[0]), int(image_size[1])), (h, w), mean, std)


def image_files(paths: list[str]) -> list[Path]:
    """The images named: files as given, folders' images (recursively, sorted)."""
    from resnet_dsl.cli.common import UsageError

    files: list[Path] = []
    for name in paths:
        p = Path(name)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in EXTENSIONS and f.is_file()
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                raise UsageError(f"{name}: no images in this folder (image files end in "
                                 f"{', '.join(sorted(EXTENSIONS))})")
            files += found
        elif p.is_file():
            files.append(p)
        elif p.exists():
            raise UsageError(f"{name} is not a file or a folder")
        else:
            raise UsageError(f"no such image: {name}")
    return files


def load_image(path: Path, t: ImageTransform) -> torch.Tensor:
    """uint8 (C, H, W) at `t.image_size`, as the run's data was stored; E802 if Pillow
    cannot read it (not an image, truncated, a decompression bomb)."""
    grey = t.colour == "grey"
    try:
        image = decode(path, (1 if grey else 3, *t.image_size))
    except UnreadableImage as exc:
        raise error("E802", str(exc), help="give PNG or JPEG files (or a folder of them)") from None
    return image.expand(t.channels, -1, -1) if grey and t.channels > 1 else image


@dataclass
class Prediction:
    image: str
    top: list[tuple[int, float]]          # (class index, probability), best first
    names: list[str] | None = field(default=None, repr=False)

    def label(self, index: int) -> str:
        return self.names[index] if self.names and index < len(self.names) else str(index)

    def to_dict(self) -> dict:
        return {"image": self.image,
                "top": [{"index": i, "class": self.label(i), "probability": p} for i, p in self.top]}


@torch.no_grad()
def predict_files(model: torch.nn.Module, files: list[Path], t: ImageTransform, *, topk: int,
                  device: torch.device, names: list[str] | None = None, batch_size: int = 64):
    """Yield a `Prediction` per file, in order, decoding `batch_size` images at a time."""
    from resnet_dsl.train.augment import BatchTransform

    transform = BatchTransform(mean=t.mean, std=t.std, padding=0, hflip=False, device=device,
                               size=tuple(t.input_size))
    model.eval()
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        images = torch.stack([load_image(f, t) for f in chunk]).to(device)
        logits = model(transform.eval(images)).float()
        probs = logits.softmax(dim=1)
        k = min(topk, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        for f, v, i in zip(chunk, values.tolist(), indices.tolist()):
            yield Prediction(str(f), list(zip(i, v)), names)
