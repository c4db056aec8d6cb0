"""What a run records: running sums on the device, one row per epoch, metrics.csv, the
summary line, and TensorBoard scalars when TensorBoard is installed.

`Meter` keeps loss and correct-count sums as device tensors, added to without reading
them back, so the step loop never waits for the GPU; `read()` synchronises (and sums
over processes), and the loop calls it only at logging intervals and epoch ends.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import torch

from resnet_dsl.train.distributed import Dist, all_reduce_sum

COLUMNS = ("epoch", "step", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
           "ema_test_loss", "ema_test_acc", "images_per_s", "epoch_time_s")


class Meter:
    """Sums of loss, correct predictions and images, kept on the device.

    >>> m = Meter(torch.device("cpu"))
    >>> m.add(torch.tensor(0.5), torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
    >>> m.read(Dist())
    (0.5, 0.5, 2)
    """

    def __init__(self, device: torch.device, initial: list[float] | None = None):
        loss_sum, correct, count = initial or (0.0, 0.0, 0)
        self.sums = torch.tensor([loss_sum, correct], dtype=torch.float64, device=device)
        self.count = int(count)  # known on the host: no copy to the device per step

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """`loss` is the batch mean; the sums stay on the device."""
        n = labels.shape[0]
        correct = (logits.argmax(1) == labels).sum()
        self.sums += torch.stack([loss.detach().double() * n, correct.double()])
        self.count += n

    def global_sums(self, d: Dist) -> list[float]:
        """[loss sum, correct, images] over all processes (a mid-epoch checkpoint keeps
        them; rank 0 starts from them on resume). Synchronises."""
        local = torch.cat([self.sums, self.sums.new_tensor([self.count])])
        return all_reduce_sum(local, d).tolist()

    def read(self, d: Dist) -> tuple[float, float, int]:
        """(mean loss, accuracy, images) over all processes. Synchronises."""
        loss_sum, correct, n = self.global_sums(d)
        return (loss_sum / n, correct / n, int(n)) if n else (math.nan, math.nan, 0)


def format_row(row: dict, epochs: int) -> str:
    """The one summary line of an epoch.

    >>> print(format_row({"epoch": 2, "train_loss": 0.5, "train_acc": 0.8, "test_loss": 0.25,
    ...                   "test_acc": 0.9, "lr": 0.1, "images_per_s": 512.3, "epoch_time_s": 3.2}, 4))
    epoch 2/4  train loss 0.5000 acc 80.00%  test loss 0.2500 acc 90.00%  lr 0.1  512 img/s  3.2s
    """
    parts = [f"epoch {row['epoch']}/{epochs}",
             f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}%",
             f"test loss {row['test_loss']:.4f} acc {100 * row['test_acc']:.2f}%"]
    if row.get("ema_test_acc") is not None:
        parts.append(f"ema acc {100 * row['ema_test_acc']:.2f}%")
    parts += [f"lr {row['lr']:.4g}", f"{row['images_per_s']:.0f} img/s", f"{row['epoch_time_s']:.1f}s"]
    return "  ".join(parts)


def csv_text(rows: list[dict]) -> str:
    """metrics.csv: one row per epoch, fixed columns, empty cells where not measured."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else _fmt(row[k])) for k in COLUMNS})
    return out.getvalue()


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


class TensorBoard:
    """Scalars under OUTPUT_DIR/tensorboard, if TensorBoard is installed (else nothing)."""

    def __init__(self, folder: Path | None):
        self.writer = None
        if folder is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(folder))

    @staticmethod
    def available() -> bool:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            return False
        return True

    def add_row(self, row: dict) -> None:
        if self.writer is None:
            return
        for key in COLUMNS[2:]:
            if row.get(key) is not None:
                self.writer.add_scalar(key.replace("_", "/", 1), row[key], row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
