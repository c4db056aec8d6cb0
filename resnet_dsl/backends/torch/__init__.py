"""The PyTorch backend: a checked IR becomes an nn.Module, or a standalone Python file.

    build_module(net)    the model, in process (build.py; device="meta" allocates nothing)
    emit_python(net)     the model as readable PyTorch source with no rnetc import (emit.py)
    init_weights(model)  torchvision's initialisation (init.py)
    inference(model)     an eval-only copy with BNs folded into their convs (fold.py)
    save_weights / load_weights   state dicts as .safetensors or .pt (weights.py)

Importing this package imports torch; the front end never does.
`resnet_dsl.build(spec, ...)` compiles a spec and calls `build_module`.
"""

from resnet_dsl.backends.torch.build import build_module
from resnet_dsl.backends.torch.emit import emit_python
from resnet_dsl.backends.torch.fold import InferenceModel, inference
from resnet_dsl.backends.torch.init import init_weights
from resnet_dsl.backends.torch.modules import Block, Residual, RnetModel, ZeroPad
from resnet_dsl.backends.torch.weights import load_state, load_weights, save_weights

__all__ = ["Block", "InferenceModel", "Residual", "RnetModel", "ZeroPad", "build_module",
           "emit_python", "inference", "init_weights", "load_state", "load_weights", "save_weights"]
