"""The on-device pipeline: the whole split resident on the device, batches gathered by
index, no DataLoader and no host round trip.

For data that fits (CIFAR's 50,000 training images are 150 MiB of uint8), this removes
the loader bottleneck that dominates small-image training on a fast GPU (airbench keeps
CIFAR-10 on the GPU the same way). Each step is one gather on the device; augmentation
follows as batched tensor ops (`augment.py`). Nothing here synchronises with the host.
"""

from __future__ import annotations

import torch

from resnet_dsl.train.data.dataset import Split
from resnet_dsl.train.data.sampler import EpochSampler


class DeviceLoader:
    """Batches of a resident split, as (uint8 images, int64 labels) on `device`.

    >>> split = Split(torch.arange(6), images=torch.zeros(6, 1, 2, 2, dtype=torch.uint8))
    >>> loader = DeviceLoader(split, EpochSampler(6, batch_size=4), torch.device("cpu"))
    >>> loader.set_epoch(0)
    >>> [tuple(x.shape) for x, y in loader.iterate()]
    [(4, 1, 2, 2)]
    """

    kind = "device"
    label = "data resident on the device"

    def __init__(self, split: Split, sampler: EpochSampler, device: torch.device):
        if split.images is None:
            raise ValueError("DeviceLoader needs a resident split")
        self.sampler = sampler
        self.device = device
        self.images = split.images.to(device, non_blocking=True)
        self.labels = split.labels.to(device, non_blocking=True)
        self._perm = torch.arange(len(split), device=device)

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self._perm = self.sampler.perm.to(self.device, non_blocking=True)

    def iterate(self, start: int = 0):
        """(images, labels) for steps start, start+1, ... of the epoch."""
        s = self.sampler
        for step in range(start, len(s)):
            lo = step * s.batch_size
            idx = self._perm[lo + s.rank:min(lo + s.batch_size, s.n):s.world_size]
            yield self.images[idx], self.labels[idx]
