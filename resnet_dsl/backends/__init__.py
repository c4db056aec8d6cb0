"""Backends: peers that turn a checked IR (`resnet_dsl.ir.graph.Network`) into something else.

Each backend is a subpackage that reads only the IR, never another backend, and is
imported only when used: `resnet_dsl.backends.torch` imports torch, so nothing in the
front end (or `rnetc check`) may import it.
"""
