"""Dataset loaders. Importing this module registers the built-in loaders (lazily).

Each is registered with its light parameter spec (:mod:`vecbench.datasets.checks`), so that
``vecbench validate`` checks dataset entries without importing the loaders (and numpy).
"""

from vecbench.core.registry import datasets

for _name, _target in [("digits", "builtin:Digits"), ("synthetic", "builtin:Synthetic"),
                       ("npy", "builtin:Npy"), ("hdf5", "loaders:Hdf5"),
                       ("vecs", "loaders:Vecs"), ("fbin", "loaders:Fbin"),
                       ("parquet", "loaders:Parquet"), ("beir", "beir:Beir"),
                       ("embed", "embed:Embed"), ("lsa", "lsa:Lsa"),
                       ("recipe", "recipes:RecipeDataset")]:
    datasets.register(_name, f"vecbench.datasets.{_target}",
                      spec=f"vecbench.datasets.checks:{_name}" if _name != "recipe" else
                      "vecbench.datasets.recipes:SPEC")

__all__ = ["Dataset", "PathResolver"]


def __getattr__(name: str):
    """``Dataset`` and ``PathResolver``, imported on first use (``Dataset`` needs numpy)."""
    if name == "Dataset":
        from vecbench.datasets.base import Dataset
        return Dataset
    if name == "PathResolver":
        from vecbench.datasets.paths import PathResolver
        return PathResolver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
