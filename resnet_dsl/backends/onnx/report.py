"""What an export produced and how it was checked, as data (tests read fields) and text.

Imports nothing heavy: the CLI and callers can name these types without torch or onnx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class BatchCheck:
    """onnxruntime against PyTorch at one batch size."""

    batch: int
    max_abs: float       # max |ort - torch|
    max_rel: float       # max |ort - torch| / |torch|
    within: bool         # |ort - torch| <= atol + rtol * |torch| everywhere
    # what `within` decides on: the largest |ort - torch| / (atol + rtol * |torch|) (<= 1
    # passes) and how many values exceed their tolerance; None where not measured
    used: float | None = None
    beyond: int = 0
    values: int = 0


@dataclass(frozen=True)
class CheckReport:
    passed: bool
    rtol: float
    atol: float
    batches: tuple[BatchCheck, ...] = ()
    problem: str | None = None   # why it failed (the checker's or onnxruntime's message)

    def describe(self) -> str:
        lines = []
        if self.problem is None or self.batches:
            lines.append("check: onnx.checker (full check) passed")
        # the check is |ort - torch| <= atol + rtol * |torch| for every value; a relative
        # difference alone reads as a failure where an output is near 0, so it is not shown
        tolerance = f"atol {self.atol:g} + rtol {self.rtol:g} x |PyTorch|"
        for b in self.batches:
            if b.within:
                verdict = "every value within " + tolerance
            elif b.values:
                verdict = f"{b.beyond:,} of {b.values:,} values beyond " + tolerance
            else:
                verdict = "beyond " + tolerance
            if b.used is not None:
                verdict += (f" (using at most {100 * b.used:.0f}% of it)" if b.within
                            else f" (by up to {b.used:.3g}x it)")
            lines.append(f"check: onnxruntime vs PyTorch at batch {b.batch}: max abs diff "
                         f"{b.max_abs:.2e}; {verdict}")
        verdict = "ok" if self.passed else f"FAILED: {self.problem}"
        lines.append(f"check: {verdict} (rtol {self.rtol:g}, atol {self.atol:g})")
        return "\n".join(lines)


@dataclass(frozen=True)
class ExportReport:
    """The result of `export_onnx`: the file, its graph, and the check (None: --no-check)."""

    path: Path
    network: str
    opset: int
    batch: int | None            # None: dynamic
    input_name: str
    output_name: str
    input_shape: tuple[int, ...]   # without the batch dimension
    output_shape: tuple[int, ...]
    op_counts: dict[str, int]
    rewrites: dict[str, int]       # minimize.py's rules and how often each fired
    size_bytes: int
    export_seconds: float
    weights: str                   # the weights file, or "random initialisation"
    external_data: Path | None = None
    check: CheckReport | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """The lines `rnetc export` prints."""
        n = "N" if self.batch is None else str(self.batch)
        shape_in = ",".join((n, *map(str, self.input_shape)))
        shape_out = ",".join((n, *map(str, self.output_shape)))
        batch = "dynamic" if self.batch is None else str(self.batch)
        data = f" + weights in {self.external_data.name}" if self.external_data else ""
        nodes = ", ".join(f"{count} {op}" for op, count in self.op_counts.items())
        lines = [
            f"onnx: {self.path} ({self.size_bytes / 2**20:,.1f} MiB{data}; opset {self.opset}; "
            f"batch {batch}; exported in {self.export_seconds:.1f} s)",
            f"graph: {self.input_name} [{shape_in}] -> {self.output_name} [{shape_out}]; "
            f"{sum(self.op_counts.values())} nodes: {nodes}",
            f"weights: {self.weights}",
        ]
        lines.append(self.check.describe() if self.check else "check: skipped (--no-check)")
        return "\n".join(lines)
