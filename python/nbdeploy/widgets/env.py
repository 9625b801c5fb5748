"""The one place that decides whether nbdeploy shows ipywidgets views or prints text.

Views are used when the code runs in a Jupyter kernel (ipykernel: JupyterLab, Notebook 7, VS Code all render
ipywidgets) and ipywidgets is installed; plain Python, a terminal IPython and the CLI get text. The answer is
computed without importing ipywidgets, so those paths never load it. ``NBDEPLOY_WIDGETS=0`` forces text (e.g. to
keep an executed notebook free of widget output), ``NBDEPLOY_WIDGETS=1`` forces views in a kernel.
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["widgets_enabled"]


def _in_kernel() -> bool:
    """Whether this process is an ipykernel with a shell (a notebook front end may be connected)."""
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def widgets_enabled() -> bool:
    """Whether views should be ipywidgets (True) or text/HTML (False); see the module docstring."""
    choice = os.environ.get("NBDEPLOY_WIDGETS", "").strip().lower()
    if choice in ("0", "false", "no", "off", "text"):
        return False
    if not _in_kernel():
        return False
    return importlib.util.find_spec("ipywidgets") is not None
