"""Which images each process trains on at each step: one permutation per epoch, sharded.

The permutation of epoch e depends only on (seed, e), as in torchvision's
DistributedSampler, so a resumed run recomputes it instead of storing it. A global
batch is `batch_size` consecutive entries of the permutation; process r of W takes
every W-th of them, starting at r. The W shards of a step together are exactly the
batch a single process would take, whatever W is: that is what lets a run on 8 GPUs
match a run on 1 (and the DDP test compare 2 processes with 1).
"""

from __future__ import annotations

import torch


class EpochSampler:
    """Index batches of one process for one epoch; call `set_epoch` before each epoch.

    >>> s = EpochSampler(10, batch_size=4, rank=1, world_size=2, seed=0)
    >>> s.set_epoch(0)
    >>> len(s), [b.tolist() for b in s.batches()] == [s.perm[1:4:2].tolist(), s.perm[5:8:2].tolist()]
    (2, True)
    """

    def __init__(self, n: int, *, batch_size: int, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle: bool = True, drop_last: bool = True):
        self.n, self.batch_size, self.rank, self.world_size = n, batch_size, rank, world_size
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.perm = torch.arange(n)

    def set_epoch(self, epoch: int) -> None:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self.perm = torch.randperm(self.n, generator=gen)

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def batches(self, start: int = 0):
        """This process's index tensors for steps start, start+1, ..."""
        for step in range(start, len(self)):
            lo = step * self.batch_size
            hi = min(lo + self.batch_size, self.n)
            yield self.perm[lo + self.rank:hi:self.world_size]
