"""curves.png: loss and accuracy per epoch, train and test, written at the end of a run."""

from __future__ import annotations

from pathlib import Path


def write_curves(rows: list[dict], path: Path, title: str = "") -> bool:
    """Plot the epoch rows to `path` (PNG); False if matplotlib is missing or no rows."""
    if not rows:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return False
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for key, label in (("train_loss", "train"), ("test_loss", "test"), ("ema_test_loss", "test (EMA)")):
        if any(r.get(key) is not None for r in rows):
            ax_loss.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    for key, label in (("train_acc", "train"), ("test_acc", "test"), ("ema_test_acc", "test (EMA)")):
        if any(r.get(key) is not None for r in rows):
            ax_acc.plot(epochs, [100 * r[key] if r.get(key) is not None else None for r in rows],
                        marker="o", label=label)
    # log scale: early test losses (BatchNorm statistics still settling) dwarf the rest
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
