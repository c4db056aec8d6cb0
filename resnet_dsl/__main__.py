"""`python -m resnet_dsl ...` is `rnetc ...`."""

from resnet_dsl.cli import entry

entry()
