"""Write a spec in Python source, with a block of your own, and catch its errors.

    python examples/02_spec_from_text.py
"""

import resnet_dsl

SPEC = """
# A basic block without the ReLU after the addition and with BN on the first conv only.
block lean(out, stride = 1) {
  conv 3x3 out stride=stride
  bn
  relu
  conv 3x3 out
  add
}

network lean_net(width = 16, classes = 10) {
  input 3x32x32
  stem { conv 3x3 width; bn; relu }
  stage x2 lean(width) shortcut=zeropad
  stage x2 lean(2 * width) stride=2 shortcut=zeropad
  head { avgpool global; flatten; fc classes }
}
"""

net = resnet_dsl.load(SPEC)
print(f"{net.name}: {net.totals.params:,} parameters, output {net.output_shape}")
for name, node in net.nodes.items():
    if node.block == "layer2.0":
        print(f"  {name:24} {node.op:8} {node.shape}")

# Widths must be integers: width=12.5 is refused with a message pointing at the spec.
try:
    resnet_dsl.load(SPEC, width=12.5)
except resnet_dsl.RnetError as err:
    print(err.render())
