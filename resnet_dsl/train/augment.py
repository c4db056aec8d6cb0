"""Batched augmentation and normalisation on the device: uint8 batch in, float batch out.

CIFAR's standard augmentation (He et al. 2015, section 4.2): pad 4 pixels of zeros,
take a random 32x32 crop, flip horizontally with probability 1/2. Per-image Python
transforms in DataLoader workers are the usual bottleneck of small-image training;
here the whole batch is one gather: every output pixel reads
padded[i, c, oy_i + y, ox_i + x] (or ox_i + W-1-x when image i is flipped), with the
offsets and flips drawn for the global batch from a generator on the device, so no
host synchronisation happens and every process of a distributed run (which takes its
share `[rank::world]` of the draws) sees the images a single process would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Draw:
    """Random numbers for one global batch: crop offsets and flips."""

    oy: torch.Tensor
    ox: torch.Tensor
    flip: torch.Tensor | None

    def shard(self, rank: int, world_size: int) -> Draw:
        if world_size == 1:
            return self
        pick = slice(rank, None, world_size)
        return Draw(self.oy[pick], self.ox[pick], None if self.flip is None else self.flip[pick])


class BatchTransform:
    """Crop/flip (training only), scale to 0..1, normalise, resize, channels-last.

    >>> t = BatchTransform(mean=(0.5,), std=(0.5,), padding=1, hflip=True, device=torch.device("cpu"))
    >>> x = torch.full((2, 1, 4, 4), 255, dtype=torch.uint8)
    >>> round(t.eval(x).max().item(), 5)      # (1 - 0.5) / 0.5
    1.0
    >>> d = t.draw(2, torch.Generator().manual_seed(0))
    >>> t.train(x, d).shape
    torch.Size([2, 1, 4, 4])
    """

    def __init__(self, *, mean: tuple[float, ...], std: tuple[float, ...], padding: int,
                 hflip: bool, device: torch.device, size: tuple[int, int] | None = None,
                 channels_last: bool = False):
        self.padding, self.hflip, self.device = padding, hflip, device
        self.size, self.channels_last = size, channels_last
        # x/255 then (x - mean)/std, folded into one multiply-add, in torch's default dtype
        # (float32; float64 where a test sets it, autocast lowers it for the model)
        dtype = torch.get_default_dtype()
        std_t = torch.tensor(std, dtype=torch.float64).clamp_min(1e-6)
        self.scale = (1.0 / (255.0 * std_t)).view(1, -1, 1, 1).to(device, dtype)
        self.shift = (-torch.tensor(mean, dtype=torch.float64) / std_t).view(1, -1, 1, 1).to(device, dtype)

    def draw(self, n: int, generator: torch.Generator) -> Draw:
        """Offsets in 0..2*padding and flips for n images, drawn on the generator's device."""
        dev = generator.device
        p2 = 2 * self.padding + 1
        oy = torch.randint(0, p2, (n,), generator=generator, device=dev)
        ox = torch.randint(0, p2, (n,), generator=generator, device=dev)
        flip = torch.randint(0, 2, (n,), generator=generator, device=dev).bool() if self.hflip else None
        return Draw(oy, ox, flip)

    def train(self, images: torch.Tensor, draw: Draw) -> torch.Tensor:
        return self._finish(crop_flip(images, draw, self.padding))

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        return self._finish(images)

    def _finish(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.shift, images.to(self.scale.dtype), self.scale)
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def crop_flip(images: torch.Tensor, draw: Draw, padding: int) -> torch.Tensor:
    """Random crop of the zero-padded images and horizontal flip, as one gather.

    >>> x = torch.arange(4, dtype=torch.uint8).view(1, 1, 2, 2)
    >>> d = Draw(torch.tensor([1]), torch.tensor([1]), torch.tensor([True]))
    >>> crop_flip(x, d, 1)[0, 0].tolist()     # offset (1, 1) is the identity crop; flipped
    [[1, 0], [3, 2]]
    """
    n, c, h, w = images.shape
    dev = images.device
    padded = F.pad(images, (padding,) * 4) if padding else images
    ys = draw.oy.to(dev).view(n, 1) + torch.arange(h, device=dev).view(1, h)
    xs = torch.arange(w, device=dev).view(1, w)
    if draw.flip is not None:
        xs = torch.where(draw.flip.to(dev).view(n, 1), (w - 1) - xs, xs)
    xs = draw.ox.to(dev).view(n, 1) + xs
    rows = torch.arange(n, device=dev).view(n, 1, 1, 1)
    chans = torch.arange(c, device=dev).view(1, c, 1, 1)
    return padded[rows, chans, ys.view(n, 1, h, 1), xs.view(n, 1, 1, w)]
