"""Dataset recipes: named public datasets, where to download them, and how to load them.

A recipe file (``vecbench/data/recipes/*.yaml``, shipped as package data, plus any folder named
in ``$VECBENCH_RECIPES``, os.pathsep-separated, searched first) maps names to recipes::

    recipes:
      sift-128-euclidean:
        description: SIFT image descriptors (ann-benchmarks)
        files:
          - url: http://ann-benchmarks.com/sift-128-euclidean.hdf5
            path: ann-benchmarks/sift-128-euclidean.hdf5   # relative to the data folder
            layout: hdf5                                   # checked after download
            sha256: null                                   # null: trust on first use
        expect: {base: 1000000, queries: 10000, dim: 128}
        dataset: {hdf5: {path: ann-benchmarks/sift-128-euclidean.hdf5}}

``dataset`` is an ordinary dataset entry; its relative paths are resolved in the data folder
(``$VECBENCH_DATA``, else ``$VECBENCH_CACHE/data``). A recipe without ``files`` names data that
is already there (the shared datasets). ``holdout: {n_queries, seed}`` draws the queries from the
base rows (for sets that ship one array, like the MNIST test images).

Checksums: a file's ``sha256`` (or a published ``md5``) is verified on every fetch. Where none is
known, the first download is trusted: its sha256 is recorded in ``vecbench-data.lock`` in the data
folder and every later fetch is checked against it (trust on first use).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from vecbench.core import atomic
from vecbench.core.atomic import atomic_path
from vecbench.core.components import expand_dataset
from vecbench.core.errors import ConfigError, DataError, did_you_mean
from vecbench.core.params import (Param, Spec, assign, check_choice, check_int, check_no_extra,
                                  check_str)
from vecbench.core.paths import data_dir
from vecbench.core.registry import datasets
from vecbench.core.yaml_files import read_yaml
from vecbench.data import RECIPES
from vecbench.datasets.paths import PathResolver

if TYPE_CHECKING:  # numpy only where data is read: validation looks recipes up too
    from vecbench.datasets.base import Dataset

RECIPES_ENV = "VECBENCH_RECIPES"
LOCK_NAME = "vecbench-data.lock"
LAYOUTS = ("hdf5", "beir-zip", "npy", "any")
FILE_KEYS = ("url", "path", "layout", "sha256", "md5", "size", "approx_size", "extract")
RECIPE_KEYS = ("description", "homepage", "license", "files", "dataset", "holdout", "expect",
               "notes")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RecipeFile:
    url: str
    path: str                       # where it lands, relative to the data folder
    layout: str = "any"
    sha256: str | None = None       # known checksum; None = trust on first use
    md5: str | None = None          # a published md5 (BEIR publishes these), also verified
    size: int | None = None         # exact bytes, verified when given
    approx_size: str | None = None  # for people: "501MB"
    extract: str | None = None      # zip files: folder (relative to the data folder) to unpack in


@dataclass(frozen=True)
class Recipe:
    name: str
    dataset: dict
    files: tuple[RecipeFile, ...] = ()
    description: str = ""
    homepage: str = ""
    license: str = ""
    holdout: dict | None = None
    expect: dict | None = None
    notes: str = ""
    source: str = ""                # the recipe file

    def entry(self) -> dict:
        return dict(self.dataset)


# --- finding and parsing recipes ------------------------------------------------------------------

def recipe_dirs() -> list[Path]:
    env = [Path(p) for p in os.environ.get(RECIPES_ENV, "").split(os.pathsep) if p]
    return env + [RECIPES]


def _checksum(value: Any, where: str, length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != length or \
            any(c not in "0123456789abcdef" for c in value.lower()):
        raise ConfigError(f"expected null or {length} hex digits, got {value!r}", where)
    return value.lower()


def _parse_file(raw: Any, where: str) -> RecipeFile:
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping with url and path, got {raw!r}", where)
    try:
        check_no_extra("a recipe file", raw, FILE_KEYS)
        size = raw.get("size")
        return RecipeFile(
            url=check_str("url", raw.get("url")), path=check_str("path", raw.get("path")),
            layout=check_choice("layout", raw.get("layout", "any"), LAYOUTS),
            sha256=_checksum(raw.get("sha256"), "sha256", 64),
            md5=_checksum(raw.get("md5"), "md5", 32),
            size=None if size is None else check_int("size", size, 0),
            approx_size=None if raw.get("approx_size") is None else str(raw["approx_size"]),
            extract=None if raw.get("extract") is None else check_str("extract", raw["extract"]))
    except ConfigError as exc:
        raise exc.within(where) from None


def parse_recipe(name: str, raw: Any, source: str = "") -> Recipe:
    """Check one recipe mapping (without touching data); errors name the YAML path."""
    where = f"recipes.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping with a 'dataset' entry, got {raw!r}", where)
    try:
        check_no_extra(f"recipe {name}", raw, RECIPE_KEYS)
    except ConfigError as exc:
        raise exc.within(where) from None
    dataset = raw.get("dataset")
    if not isinstance(dataset, dict) or len(dataset) != 1:
        raise ConfigError(f"expected a dataset entry {{loader: {{parameters}}}}, got {dataset!r}",
                          f"{where}.dataset")
    files = raw.get("files") or []
    if not isinstance(files, list):
        raise ConfigError(f"expected a list of files, got {files!r}", f"{where}.files")
    holdout = _counts(raw.get("holdout"), ("n_queries", "seed"), f"{where}.holdout")
    if holdout is not None and "n_queries" not in holdout:
        raise ConfigError("expected {n_queries: N, seed: S}, got no n_queries", f"{where}.holdout")
    return Recipe(name=name, dataset=dataset,
                  files=tuple(_parse_file(f, f"{where}.files[{i}]") for i, f in enumerate(files)),
                  description=str(raw.get("description", "")),
                  homepage=str(raw.get("homepage", "")), license=str(raw.get("license", "")),
                  holdout=holdout, source=source, notes=str(raw.get("notes", "")),
                  expect=_counts(raw.get("expect"), ("base", "queries", "dim"), f"{where}.expect"))


def _counts(value: Any, keys: tuple[str, ...], where: str) -> dict | None:
    """None, or a mapping of some of ``keys`` to integers >= 0."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(keys):
        raise ConfigError(f"expected a mapping of {', '.join(keys)} to integers, got {value!r}",
                          where)
    return {key: check_int(f"{where}.{key}", v, 0) for key, v in value.items()}


def _unknown(what: str, name: Any, names: list[str]) -> str:
    return f"unknown {what} {name!r}{did_you_mean(name, names)}"


#: Parsed recipe files by (path, mtime, size): an experiment names recipes in many entries, and
#: parsing the bundled files each time cost validate about 0.1 s per entry.
_PARSED: dict[tuple[str, int, int], dict] = {}


def _read_recipe_file(path: Path) -> dict:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        _PARSED[key] = read_yaml(path)
    return _PARSED[key]


def load_recipes(dirs: list[Path] | None = None) -> dict[str, Recipe]:
    """All recipes by name; a name in an earlier folder hides the same name in a later one."""
    found: dict[str, Recipe] = {}
    for folder in dirs if dirs is not None else recipe_dirs():
        for path in sorted(Path(folder).glob("*.yaml")) if Path(folder).is_dir() else []:
            raw = _read_recipe_file(path)
            recipes = raw.get("recipes")
            if not isinstance(recipes, dict):
                raise ConfigError("expected a mapping 'recipes: {name: recipe}'", "recipes",
                                  file=str(path))
            for name, body in recipes.items():
                try:
                    recipe = parse_recipe(str(name), body, str(path))
                except ConfigError as exc:
                    raise exc.in_file(str(path)) from None
                found.setdefault(recipe.name, recipe)
    return found


def get_recipe(name: str) -> Recipe:
    recipes = load_recipes()
    if name not in recipes:
        raise ConfigError(f"{_unknown('recipe', name, list(recipes))}; expected one of: "
                          f"{', '.join(sorted(recipes))}", "name")
    return recipes[name]


def dataset_entry(spec: Any, where: str = "") -> Any:
    """A bare recipe name becomes ``{recipe: {name: ...}}``; loader names and mappings pass."""
    if not isinstance(spec, str) or spec in datasets:
        return spec
    recipes = load_recipes()
    if spec in recipes:
        return {"recipe": {"name": spec}}
    raise ConfigError(f"{_unknown('dataset or recipe', spec, datasets.names() + list(recipes))};"
                      f" expected a loader ({', '.join(datasets.names())}) or a recipe "
                      "(vecbench datasets list)", where)


def recipe_status(recipe: Recipe, folder: Path | None = None) -> str:
    """``fetched``/``missing`` for downloads, ``present``/``absent`` for local data."""
    folder = folder or data_dir()
    if recipe.files:
        targets = [folder / (f.extract or f.path) for f in recipe.files]
        return "fetched" if all(t.exists() for t in targets) else "missing"
    params = next(iter(recipe.dataset.values())) or {}
    resolver = PathResolver(folder)
    ok = all(resolver.resolve(key, value, must_exist=False).exists()
             for key, value in params.items()
             if key in ("path", "base", "queries") and isinstance(value, str))
    return "present" if ok else "absent"


def _known_recipe(values: dict) -> None:
    get_recipe(values["name"])


#: The light parameter spec of the ``recipe`` loader (validation reads recipe files, no data).
SPEC = Spec("RecipeDataset", (
    Param("name", "str", doc="a recipe (vecbench datasets list); its data is read "
          "from the data folder, $VECBENCH_DATA"),
), check=_known_recipe)


# --- the `recipe` dataset loader ------------------------------------------------------------------

class _DataFolder(PathResolver):
    """Paths relative to the data folder (which usually is $VECBENCH_DATA: list it once)."""

    def roots(self) -> list[Path]:
        return list(dict.fromkeys(super().roots()))


class RecipeDataset:
    """``recipe: {name: sift-128-euclidean}``: load a recipe's dataset from the data folder."""

    params = SPEC.params

    def __init__(self, name: str):
        assign(self, locals())
        self.recipe = get_recipe(self.name)

    def load(self, paths: PathResolver | None = None) -> Dataset:
        where = f"{paths.where if paths and paths.where else 'recipe'}[{self.name}]"
        components = expand_dataset(self.recipe.entry(), where)
        if len(components) != 1:
            raise ConfigError(f"recipe {self.name!r} expands to {len(components)} datasets; "
                              "expected one (no lists in its dataset entry)", "name")
        component = components[0]
        loader = datasets.get(component.name)(**component.params)
        try:
            dataset = loader.load(_DataFolder(data_dir(), where))
        except DataError as exc:
            how = (f"fetch it with `vecbench datasets fetch {self.name}`" if self.recipe.files
                   else "set VECBENCH_DATA to the folder that holds it")
            raise DataError(f"{exc}; recipe {self.name!r}: {how}") from None
        if self.recipe.holdout:
            dataset = holdout(dataset, int(self.recipe.holdout["n_queries"]),
                              int(self.recipe.holdout.get("seed", 0)), self.name)
        return dataset


def holdout(dataset: Dataset, n_queries: int, seed: int, name: str) -> Dataset:
    """Draw ``n_queries`` rows of base (seeded) as queries; the rest stay the base."""
    import numpy as np

    from vecbench.datasets.base import finish

    n = len(dataset.base)
    if n_queries >= n:
        raise DataError(f"{name}: holdout of {n_queries} queries from {n} base vectors; expected "
                        "fewer queries than vectors")
    rows = np.random.default_rng(seed).permutation(n)
    queries, keep = np.sort(rows[:n_queries]), np.sort(rows[n_queries:])
    labels = None if dataset.labels is None else np.asarray(dataset.labels)
    return finish(name, np.asarray(dataset.base)[keep], np.asarray(dataset.base)[queries],
                  dataset.metric, seed=seed,
                  labels=None if labels is None else labels[keep],
                  query_labels=None if labels is None else labels[queries],
                  info={**{k: v for k, v in dataset.info.items() if not k.startswith("_")},
                        "holdout": {"n_queries": n_queries, "seed": seed}})


# --- fetch: download, verify checksum and layout, record the lock -------------------------------

def file_digests(path: Path) -> dict[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def read_lock(folder: Path) -> dict:
    path = folder / LOCK_NAME
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not a valid lock file ({exc}); expected JSON") from None


def write_lock(folder: Path, lock: dict) -> None:
    atomic.write_text(folder / LOCK_NAME, json.dumps(lock, indent=1, sort_keys=True) + "\n")


def _download(url: str, work: Path, target: Path, log: Callable[[str], None]) -> None:
    import shutil
    import urllib.error
    import urllib.request

    log(f"downloading {url} -> {target}")
    try:
        # ``work`` is the exclusive temporary atomic_path made: O_NOFOLLOW refuses a link
        # swapped in for it
        fd = os.open(work, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"{url}: download failed ({reason}); expected a reachable URL "
                        f"(or put the file at {target} by hand)") from None


def _verify(file: RecipeFile, path: Path, digests: dict, locked: dict | None, shown: Path) -> str:
    """Check checksums and size; return where the trusted checksum came from."""
    size = path.stat().st_size
    if file.size is not None and size != file.size:
        raise DataError(f"{shown}: {size} bytes; expected {file.size} (recipe)")
    checks = [("sha256", file.sha256, "the recipe"), ("md5", file.md5, "the published md5"),
              ("sha256", (locked or {}).get("sha256"), f"{LOCK_NAME}, recorded on first use")]
    for kind, expected, origin in checks:
        if expected and digests[kind] != expected:
            raise DataError(f"{shown}: {kind} {digests[kind]}; expected {expected} (from "
                            f"{origin}): corrupt download, or the file changed upstream")
    return next((origin for _, expected, origin in checks if expected), "")


def check_layout(path: Path, layout: str, expect: dict | None = None) -> None:
    """A DataError unless ``path`` looks like the recipe says (and has the expected shape)."""
    if layout == "hdf5":
        from vecbench.datasets.formats_tables import read_hdf5

        data = read_hdf5(path)
        if data.neighbors is None:
            raise DataError(f"{path}: no 'neighbors' dataset; expected the ann-benchmarks layout "
                            "(train, test, neighbors)")
        shape = {"base": len(data.base), "queries": len(data.queries), "dim": data.base.shape[1]}
    elif layout == "npy":
        from vecbench.datasets.formats import read_npy

        x = read_npy(path)
        shape = {"base": len(x), "dim": x.shape[1] if x.ndim == 2 else None}
    elif layout == "beir-zip":
        _check_beir_zip(path)
        shape = {}
    else:
        return
    for key, value in (expect or {}).items():
        if key in shape and shape[key] != value:
            raise DataError(f"{path}: {key} = {shape[key]}; expected {value} (recipe 'expect')")


def _check_beir_zip(path: Path) -> list[str]:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable zip file ({exc})") from None
    if bad is not None:
        raise DataError(f"{path}: member {bad!r} fails its CRC check; corrupt download")
    for name in names:  # unpacking must never write outside the target folder
        if name.startswith(("/", "\\")) or ".." in Path(name).parts:
            raise DataError(f"{path}: member {name!r} points outside the folder; refusing")
    folders = {n.rsplit("/", 1)[0] for n in names if n.endswith("/corpus.jsonl")}
    for folder in sorted(folders):
        has = {f"{folder}/queries.jsonl"} <= set(names) and any(
            n.startswith(f"{folder}/qrels/") and n.endswith(".tsv") for n in names)
        if has:
            return names
    raise DataError(f"{path}: no folder with corpus.jsonl, queries.jsonl and qrels/*.tsv; "
                    "expected the BEIR layout")


def _extract(path: Path, folder: Path) -> None:
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():  # refuse members that would land outside the folder
            if not (root / name).resolve().is_relative_to(root):
                raise DataError(f"{path}: member {name!r} points outside {folder}; refusing")
        archive.extractall(folder)


def fetch(name: str, dest: str | Path | None = None,
          log: Callable[[str], None] = print) -> list[Path]:
    """Download a recipe's files into ``dest`` (default :func:`data_dir`), verified.

    Already present files are verified instead of downloaded. A download that fails a check is
    removed and reported as a DataError; the lock file records first-use checksums.
    """
    recipe = get_recipe(name)
    folder = Path(dest) if dest is not None else data_dir()
    if not recipe.files:
        log(f"{name}: a local dataset, nothing to download; it is read from {folder} "
            f"({recipe_status(recipe, folder)})")
        return []
    folder.mkdir(parents=True, exist_ok=True)
    lock = read_lock(folder)
    written = []
    for file in recipe.files:
        target = folder / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fresh = not target.exists()
        # a download goes to an exclusive temporary sibling, renamed over the target only
        # once verified: never a partial or corrupt file, never through a planted link
        with atomic_path(target) if fresh else contextlib.nullcontext(target) as work:
            if fresh:
                _download(file.url, work, target, log)
            digests = file_digests(work)
            origin = _verify(file, work, digests, lock.get(file.path), target)
            check_layout(work, file.layout, recipe.expect)
        if file.path not in lock:
            lock[file.path] = {"sha256": digests["sha256"], "size": target.stat().st_size,
                               "url": file.url, "recipe": name,
                               "recorded": time.strftime("%Y-%m-%d")}
            write_lock(folder, lock)
            log(f"{target}: sha256 {digests['sha256']} recorded in {folder / LOCK_NAME} "
                f"(trust on first use{'; also matches ' + origin if origin else ''})")
        else:
            log(f"{target}: verified against {origin}")
        if file.extract and (fresh or not (folder / file.extract).exists()):
            _extract(target, folder / file.extract)
        written.append(target)
    return written


def recipe_table() -> list[str]:
    """Lines for ``vecbench datasets list``: every recipe, its status and size."""
    recipes = load_recipes()
    folder = data_dir()
    lines = [f"recipes (data folder {folder}; fetch with `vecbench datasets fetch NAME`):"]
    width = max((len(name) for name in recipes), default=4)
    for name, recipe in recipes.items():
        size = ", ".join(f.approx_size for f in recipe.files if f.approx_size) or "-"
        lines.append(f"  {name:<{width}}  {recipe_status(recipe, folder):<8} {size:>6}  "
                     f"{recipe.description}")
    return lines
