"""The ``pytest11`` entry point (``vecbench = vecbench.pytest_plugin``): the plugin itself is
:mod:`vecbench.cli.pytest_plugin`; this module only re-exports it for pytest and for conftest
files that register it by this name."""

from vecbench.cli.pytest_plugin import *  # noqa: F401,F403
