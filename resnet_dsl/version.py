"""rnetc's version, in a module of its own: backends and tools read it from here, never
through the package face (`resnet_dsl/__init__.py`), which imports the compiler."""

__version__ = "0.1.0"
