"""Progress while an epoch runs: a tqdm bar on a terminal, plain lines otherwise.

Piped to a file or a CI log, a bar's carriage returns are noise; there a line every
--print-freq steps says the same. Either way, the numbers shown are read from the
device only every --print-freq steps (a read waits for the GPU).
"""

from __future__ import annotations

import sys


class Progress:
    """One epoch's progress display; `update` at logging steps, `close` at the end."""

    def __init__(self, epoch: int, epochs: int, steps: int, start: int = 0, *,
                 enabled: bool = True, stream=None):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.prefix = f"epoch {epoch}/{epochs}"
        self.steps = steps
        self.bar = None
        if enabled and _is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=steps, initial=start, desc=self.prefix, file=self.stream,
                            leave=False, dynamic_ncols=True, unit="step")

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def update(self, step: int, loss: float, acc: float, lr: float, images_per_s: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f} acc {100 * acc:.2f}% lr {lr:.4g} "
                                     f"{images_per_s:.0f} img/s", refresh=True)
        else:
            print(f"{self.prefix}  step {step}/{self.steps}  loss {loss:.4f}  acc {100 * acc:.2f}%  "
                  f"lr {lr:.4g}  {images_per_s:.0f} img/s", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _is_terminal(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()
