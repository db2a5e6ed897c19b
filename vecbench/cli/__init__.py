"""Layer 10, the top: the command line (``vecbench``), the component reference, the pytest plugin.

``vecbench.cli:main`` is the console script's entry point.
"""

from vecbench.cli.commands import main

__all__ = ["main"]
