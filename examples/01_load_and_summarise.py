"""Load a spec, override a parameter, print the summary and a few exact figures.

    python examples/01_load_and_summarise.py
"""

from pathlib import Path

import resnet_dsl

SPECS = Path(__file__).resolve().parent.parent / "specs"

# cifar50 has parameters (depth = 50, k = 1, classes = 10); widen it by k = 2.
net = resnet_dsl.load(SPECS / "cifar50.rnet", k=2)
print(resnet_dsl.summary(net, depth=1))

print(f"{net.name}: {net.totals.params:,} parameters, {net.totals.macs:,} MACs")
for stage in net.stages.values():
    first = net.blocks[stage.blocks[0]]
    print(f"  {stage.name}: {stage.repeats} x {stage.block}, first block's shortcut: {first.shortcut}")
