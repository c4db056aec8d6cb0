"""What every data source hands to the training loop: two splits of uint8 images.

A source (digits, cifar, folder, synthetic) reads its files and returns a `Data`: the
train and test `Split`s, the class names, the per-channel mean and standard deviation
used for normalisation, and the augmentation that suits it (digits are not flipped).
Images stay uint8 (N, C, H, W) until the device: a quarter of the memory of float32,
and the same bytes whichever loader moves them. A split is either resident (`images`,
a tensor) or read one file at a time (`dataset`, for image folders too big to hold).
This module reads no files itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Split:
    """One split: labels, and images either in memory or behind a per-item reader.

    >>> s = Split(labels=torch.tensor([0, 1]), images=torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    >>> len(s), s.resident
    (2, True)
    """

    labels: torch.Tensor                      # int64 (N,)
    images: torch.Tensor | None = None        # uint8 (N, C, H, W), resident
    dataset: torch.utils.data.Dataset | None = None  # item i -> (uint8 CxHxW tensor, label)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def resident(self) -> bool:
        return self.images is not None

    def head(self, n: int) -> Split:
        """The first n items (for --subset); sources order their splits deterministically."""
        if n >= len(self):
            return self
        if self.images is not None:
            return Split(self.labels[:n], images=self.images[:n])
        return Split(self.labels[:n], dataset=torch.utils.data.Subset(self.dataset, range(n)))


@dataclass
class Data:
    """A dataset ready for training: splits, classes, normalisation and augmentation."""

    name: str
    train: Split
    test: Split
    classes: list[str]
    image_shape: tuple[int, int, int]         # (C, H, W) of the stored images
    mean: tuple[float, ...]                   # per channel, on the 0..1 scale
    std: tuple[float, ...]
    default_epochs: int                       # when neither --epochs nor a config sets it
    hflip: bool                               # horizontal flips preserve the labels
    crop_padding: int                         # pixels of zero padding for the random crop
    notes: list[str] = field(default_factory=list)  # printed once by the main process

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, on the 0..1 scale.

    Computed in float64 chunks so 50,000 CIFAR images need no large temporary.

    >>> m, s = channel_stats(torch.full((2, 1, 2, 2), 255, dtype=torch.uint8))
    >>> m, s
    ((1.0,), (0.0,))
    """
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    for chunk in images.split(4096):
        x = chunk.to(torch.float64).div_(255).transpose(0, 1).reshape(c, -1)
        total += x.sum(1)
        squares += (x * x).sum(1)
    count = images.numel() // c
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(0).sqrt()
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)
