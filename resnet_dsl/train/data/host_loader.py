"""The DataLoader pipeline, for data that does not fit on the device or is read from files.

Worker processes decode and collate uint8 batches (pinned when the device is CUDA,
copied without blocking); augmentation then runs batched on the device exactly as in
the resident pipeline, so the two produce the same images for the same seed. The
batches come from the same `EpochSampler`, so resuming mid-epoch skips the steps done.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from resnet_dsl.train.data.dataset import Split
from resnet_dsl.train.data.sampler import EpochSampler


class _Resident(Dataset):
    def __init__(self, split: Split):
        self.images, self.labels = split.images, split.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]


class _Batches:
    """A batch sampler whose epoch and start step the main process sets before `iter`
    (it is iterated in the main process, so persistent workers see the change)."""

    def __init__(self, sampler: EpochSampler):
        self.sampler, self.start = sampler, 0

    def __iter__(self):
        return (b.tolist() for b in self.sampler.batches(self.start))

    def __len__(self) -> int:
        return len(self.sampler) - self.start


class HostLoader:
    """Batches read by `workers` processes, as (uint8 images, int64 labels) on `device`.

    >>> split = Split(torch.arange(6), images=torch.zeros(6, 1, 2, 2, dtype=torch.uint8))
    >>> loader = HostLoader(split, EpochSampler(6, batch_size=3), torch.device("cpu"), workers=0)
    >>> loader.set_epoch(0)
    >>> [tuple(x.shape) for x, y in loader.iterate(start=1)]
    [(3, 1, 2, 2)]
    """

    kind = "dataloader"

    def __init__(self, split: Split, sampler: EpochSampler, device: torch.device, workers: int):
        self.sampler, self.device = sampler, device
        self.label = f"DataLoader with {workers} worker{'s' if workers != 1 else ''}"
        self._batches = _Batches(sampler)
        dataset = split.dataset if split.dataset is not None else _Resident(split)
        self._loader = DataLoader(
            dataset, batch_sampler=self._batches, num_workers=workers,
            pin_memory=device.type == "cuda", persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None)

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def iterate(self, start: int = 0):
        self._batches.start = start
        for images, labels in self._loader:
            yield (images.to(self.device, non_blocking=True),
                   labels.to(self.device, non_blocking=True))
