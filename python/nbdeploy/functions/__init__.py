"""Functions: ``%%deploy`` a cell (or ``nbd.deploy(fn)``), get a versioned HTTP endpoint, invoke it anywhere.

``nbd.functions.<method>`` is the method of the default :class:`~nbdeploy.app.Nbdeploy`'s
:class:`FunctionManager` (``nbd.functions.list()``, ``nbd.functions.invoke("greet", name="Ada")``).
"""

from __future__ import annotations

from ..app import delegate
from .manager import FunctionManager
from .records import Deployment, FunctionInfo, FunctionList, FunctionSummary, InvokeResult

__all__ = ["Deployment", "FunctionInfo", "FunctionList", "FunctionManager", "FunctionSummary", "InvokeResult"]

__getattr__, __dir__ = delegate(__name__, "functions")
