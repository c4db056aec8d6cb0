"""Backends: peers over the checked IR (`resnet_dsl.ir.graph.Network`).

Each backend lives in its own subpackage, imports its third-party library (torch,
graphviz, onnx) only when used, and never imports another backend.
"""
