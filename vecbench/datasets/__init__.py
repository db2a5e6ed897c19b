"""Dataset loaders. Importing this module registers the built-in loaders (lazily)."""

from vecbench.datasets.base import Dataset, PathResolver
from vecbench.registry import datasets

datasets.register("digits", "vecbench.datasets.builtin:Digits")
datasets.register("synthetic", "vecbench.datasets.builtin:Synthetic")
datasets.register("npy", "vecbench.datasets.builtin:Npy")

__all__ = ["Dataset", "PathResolver"]
datasets.register("hdf5", "vecbench.datasets.loaders:Hdf5")
datasets.register("vecs", "vecbench.datasets.loaders:Vecs")
datasets.register("fbin", "vecbench.datasets.loaders:Fbin")
datasets.register("parquet", "vecbench.datasets.loaders:Parquet")
datasets.register("beir", "vecbench.datasets.beir:Beir")
datasets.register("embed", "vecbench.datasets.embed:Embed")
datasets.register("lsa", "vecbench.datasets.lsa:Lsa")
datasets.register("recipe", "vecbench.datasets.recipes:RecipeDataset")
