"""Dataset loaders. Importing this module registers the built-in loaders (lazily)."""

from vecbench.datasets.base import Dataset, PathResolver
from vecbench.registry import datasets

datasets.register("digits", "vecbench.datasets.builtin:Digits")
datasets.register("synthetic", "vecbench.datasets.builtin:Synthetic")
datasets.register("npy", "vecbench.datasets.builtin:Npy")

__all__ = ["Dataset", "PathResolver"]
