"""The dimension of a dataset entry where it is known without loading data, so that
``vecbench validate`` refuses a reduction to more dimensions than its input has.

Known: digits (64), synthetic and lsa (their ``dim``), a recipe's ``expect.dim``, and files whose
header says it (``.npy`` bases, BEIR embeddings). Everything else is None: checked at run time.
Numpy-free: validate must stay light, so the ``.npy`` header is read here by hand (a magic
string, a version, a length and a Python literal, per numpy's format description).
"""

from __future__ import annotations

import ast
import struct
from pathlib import Path

from vecbench.datasets.paths import PathResolver

DIGITS_DIM = 64
_NPY_MAGIC = b"\x93NUMPY"


def npy_shape(path: Path) -> tuple[int, ...] | None:
    """The shape in a ``.npy`` file's header, or None if it is not a readable ``.npy`` file."""
    try:
        with open(path, "rb") as file:
            head = file.read(12)
            if len(head) < 10 or not head.startswith(_NPY_MAGIC):
                return None
            if head[6] == 1:
                length, start = struct.unpack("<H", head[8:10])[0], 10
            else:
                length, start = struct.unpack("<I", head[8:12])[0], 12
            if length > 1 << 16:
                return None
            file.seek(start)
            header = ast.literal_eval(file.read(length).decode("latin1"))
        shape = header["shape"]
        return tuple(int(n) for n in shape)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):
        return None


def _file_dim(resolver: PathResolver, relative: str) -> int | None:
    path = resolver.resolve("", relative, must_exist=False)
    shape = npy_shape(path) if path.is_file() else None
    return shape[1] if shape is not None and len(shape) == 2 else None


def known_dim(name: str, params: dict, base_dir: str | None = None) -> int | None:
    """The vectors' dimension of dataset entry ``{name: params}``, or None if not known yet."""
    resolver = PathResolver(base_dir)
    if name == "digits":
        return DIGITS_DIM
    if name == "synthetic":
        return int(params.get("dim", 64))
    if name == "lsa":
        return int(params.get("dim", 256))
    if name == "npy" and isinstance(params.get("base"), str):
        return _file_dim(resolver, params["base"])
    if name == "beir" and isinstance(params.get("path"), str):
        return _file_dim(resolver, f"{params['path']}/embeddings/{params.get('embeddings')}/"
                                   "corpus.npy")
    if name == "recipe":
        from vecbench.datasets.recipes import get_recipe  # YAML only

        recipe = get_recipe(params["name"])
        if recipe.expect and isinstance(recipe.expect.get("dim"), int):
            return recipe.expect["dim"]
        (inner, inner_params), = recipe.entry().items()
        return known_dim(inner, inner_params or {}, None)
    return None


def known_size(name: str, params: dict, base_dir: str | None = None) -> int | None:
    """The number of base vectors of dataset entry ``{name: params}`` where known without
    loading data (synthetic's ``n_base``, an ``.npy`` base's or BEIR corpus's header), else
    None: a runbook inserting past the data is then refused at validate."""
    relative = None
    if name == "synthetic":
        return int(params.get("n_base", 10_000))
    if name == "npy" and isinstance(params.get("base"), str):
        relative = params["base"]
    elif name == "beir" and isinstance(params.get("path"), str):
        relative = f"{params['path']}/embeddings/{params.get('embeddings')}/corpus.npy"
    if relative is None:
        return None
    path = PathResolver(base_dir).resolve("", relative, must_exist=False)
    shape = npy_shape(path) if path.is_file() else None
    return shape[0] if shape is not None and len(shape) == 2 else None
