"""Resource limits: what a spec may ask for before rnetc refuses it (error E601).

The defaults admit every real ResNet (ResNet-1001, WRN-28-10, wide_resnet101_2 and
ResNeXt-101 at ImageNet sizes) with room to spare, and refuse absurd specs before any
tensor is allocated. Each limit is checked as early as it can be: file size before
parsing, repeats before unrolling, layers while unrolling, parameters and activation
memory on the shaped IR.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 1 << 20          # one spec file (1 MiB)
    max_import_depth: int = 16             # nested imports
    max_block_depth: int = 32              # blocks calling blocks
    max_nesting: int = 100                 # syntax nesting: braces, parentheses, operators
    max_layers: int = 10_000               # nodes in the lowered IR (ResNet-1001: 3,340)
    max_steps: int = 50_000                # statements run while lowering (loops of block calls)
    max_repeats: int = 10_000              # blocks in one stage
    max_channels: int = 65_536             # any layer's width
    max_spatial: int = 16_384              # input height/width, kernel size
    max_params: int = 10_000_000_000       # parameters of the whole network
    max_activation_bytes: int = 64 << 30   # fp32 forward activations for one image
    max_number: int = 1 << 62              # any integer a spec computes

    def with_overrides(self, **changes: int) -> Limits:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limit {f.name} must be a positive integer, got {value!r}")


def raise_hint(name: str) -> str:
    """The help line of an E601 error: how to raise limit `name`."""
    return f"if this is really meant, raise the limit: --limit {name}=N (Python: limits=Limits({name}=N))"


DEFAULT_LIMITS = Limits()
