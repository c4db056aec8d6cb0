"""`rnetc ...` with torch's default dtype set to float64, for tests that compare training
runs whose float32 rounding would otherwise differ (torchrun needs a script to run)."""

import sys

import torch

if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    from resnet_dsl.cli import main

    sys.exit(main(sys.argv[1:]))
