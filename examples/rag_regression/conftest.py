"""Load vecbench's pytest plugin when it is not yet installed as an entry point.

Once vecbench is installed (``pip install vecbench``), its ``pytest11`` entry point loads the
plugin and this file is not needed.
"""

import vecbench.pytest_plugin as vecbench_plugin


def pytest_addoption(parser, pluginmanager):
    if not pluginmanager.is_registered(vecbench_plugin):
        pluginmanager.register(vecbench_plugin, "vecbench.pytest_plugin")
