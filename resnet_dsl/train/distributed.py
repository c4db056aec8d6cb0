"""Running under torchrun: process group, device per process, DDP, SyncBatchNorm.

`torchrun --nproc_per_node=N` (and multi-node rendezvous) sets RANK, WORLD_SIZE and
LOCAL_RANK; `setup` reads them, joins the process group (NCCL on CUDA, gloo on CPU) and
gives each process the GPU of its local rank. Without those variables everything here
is a no-op for one process. Only rank 0 logs and writes files; the others compute.

SyncBatchNorm: torch's version needs CUDA, so on CPU (the gloo tests, and anyone
trying DDP on a laptop) `CpuSyncBatchNorm` computes the batch statistics over all
processes with one differentiable all-reduce of (sum, sum of squares, count).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from resnet_dsl.train.config import OptionError


@dataclass(frozen=True)
class Dist:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env() -> Dist:
    """The torchrun variables, or a single process.

    >>> from_env() if "WORLD_SIZE" not in os.environ else Dist()
    Dist(rank=0, world_size=1, local_rank=0, local_world_size=1)
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")),
                int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def resolve_device(choice: str, d: Dist) -> torch.device:
    """`auto` is this process's GPU if there is one, else the CPU."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise OptionError(f"--device must be auto, cpu, cuda or cuda:N, got `{choice}`") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"--device {choice}: no CUDA GPU is available (use --device cpu)")
        index = device.index if device.index is not None else d.local_rank
        if index >= torch.cuda.device_count():
            raise OptionError(f"--device {choice}: this machine has {torch.cuda.device_count()} GPU(s)")
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise OptionError(f"--device must be auto, cpu, cuda or cuda:N, got `{choice}`")
    return device


def setup(d: Dist, device: torch.device) -> None:
    """Join the process group of a torchrun launch (nothing for one process)."""
    if d.enabled and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                device_id=device if device.type == "cuda" else None)


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """Sum a tensor over processes, in place; one process: unchanged."""
    if d.enabled:
        dist.all_reduce(t)
    return t


def any_process(flag: bool, d: Dist, device: torch.device) -> bool:
    """True on every process if it is True on any (to stop all at the same step)."""
    if not d.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def wrap(module: nn.Module, d: Dist, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` when there are several processes."""
    if not d.enabled:
        return module
    return nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None)


# -- SyncBatchNorm --------------------------------------------------------------------------
class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch of all processes.

    The gradient flows through the all-reduce (its backward sums the gradients of all
    processes), which is what makes the result equal to one process on the whole batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        xf = x if x.dtype in (torch.float32, torch.float64) else x.float()
        count = torch.full((1,), x.numel() // c, dtype=xf.dtype, device=x.device)
        stats = all_reduce(torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp_min(1), m)
        y = (xf - mean.view(1, c, 1, 1)) * torch.rsqrt(var.view(1, c, 1, 1) + self.eps)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm2d by a synchronised one (torch's on CUDA, ours on CPU)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = CpuSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats).to(device)
            sync.load_state_dict(child.state_dict())
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child, device)
    return module
