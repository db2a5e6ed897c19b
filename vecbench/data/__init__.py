"""Files shipped inside the package: dataset recipes and example experiments.

They live beside the code (``vecbench/data/recipes/*.yaml``, ``vecbench/data/examples/*.yaml``),
so a plain ``pip install`` carries them and they are found from any folder.
"""

from __future__ import annotations

from pathlib import Path

from vecbench.core.errors import ConfigError, did_you_mean

HERE = Path(__file__).resolve().parent
RECIPES = HERE / "recipes"
EXAMPLES = HERE / "examples"


def example_names() -> list[str]:
    """Names of the packaged example experiments (``vecbench run --example NAME``)."""
    return sorted(path.stem for path in EXAMPLES.glob("*.yaml"))


def example_path(name: str) -> Path:
    """The packaged example experiment ``name``; a one-line ConfigError names the others."""
    names = example_names()
    if name not in names:
        raise ConfigError(f"unknown example {name!r}{did_you_mean(name, names)}; expected one of: "
                          f"{', '.join(names)}",
                          "--example")
    return EXAMPLES / f"{name}.yaml"
