"""IPython magics: ``%load_ext nbdeploy`` registers every class listed in :data:`MAGIC_CLASSES`.

Magics stay thin: parse the line, call the Python API, render the result (HTML/ipywidgets in a notebook).
"""

from __future__ import annotations

import importlib
from typing import Any

# "module:Class" of every Magics class; a service adds its own here.
MAGIC_CLASSES: list[str] = [
    "nbdeploy.magics.deploy:DeployMagics",
    "nbdeploy.magics.models:ModelMagics",
    "nbdeploy.magics.jobs:JobMagics",
]


def load_ipython_extension(ipython: Any) -> None:
    """Register the nbdeploy magics with ``ipython``."""
    for entry in MAGIC_CLASSES:
        module, _, attr = entry.partition(":")
        ipython.register_magics(getattr(importlib.import_module(module), attr))
