"""IPython magics: ``%load_ext nbdeploy`` registers every service's ``Magics`` classes (declared in
:data:`nbdeploy.app.SERVICES`; each lives in its service's folder as ``magics.py``).

Magics stay thin: parse the line, call the Python API, render the result (HTML/ipywidgets in a notebook).
"""

from __future__ import annotations

from typing import Any

from ..app import Nbdeploy, load


def load_ipython_extension(ipython: Any) -> None:
    """Register the nbdeploy magics with ``ipython``."""
    for entry in Nbdeploy.magic_classes():
        ipython.register_magics(load(entry))
