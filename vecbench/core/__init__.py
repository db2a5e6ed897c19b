"""Layer 1, the bottom: errors, parameters, registries, paths, vector helpers, files and the cache.

Imports nothing else of vecbench. The layers, each importing only from itself and the layers
before it (enforced by import-linter, ``[tool.importlinter]`` in pyproject.toml): ``core``,
``compute``, ``datasets``, ``transforms``, ``indexes``, ``run``, ``evaluate``, ``conformance``,
``present``, ``cli``.
"""
