"""ipywidgets views of nbdeploy's objects, for notebooks (JupyterLab, Notebook 7, VS Code).

Each view takes the API object (``nbd`` / an :class:`~nbdeploy.app.Nbdeploy`, a ``Run``, a ``Deployment``) and
calls it; the magics and ``Run``'s notebook display only choose between a view and text, in one place
(:func:`widgets_enabled`). Importing this package does not import ipywidgets: the views are loaded on first use,
so the CLI and plain Python never pay for them.

- :class:`DeployCard` — what ``%%deploy`` shows: name, version, URL, a copy button, a "Try it" form from the
  signature with the answer and its latency; a redeploy of the same name updates the same card.
- :class:`RunView` — a live run: status, a progress bar over cells (k/N), the log tail, a link to the output
  notebook; :class:`NodeRow` rows for runs made of nodes (pipelines).
- :class:`RunsTable`, :class:`ModelsTable`, :class:`FunctionsTable`, :class:`DatasetsTable`,
  :class:`ClusterView` — tables that refresh, with actions (cancel a run, set a model alias).
"""

from __future__ import annotations

from typing import Any

from .env import widgets_enabled

__all__ = [
    "ClusterView",
    "DatasetsTable",
    "DeployCard",
    "FunctionsTable",
    "ModelsTable",
    "NodeRow",
    "RunView",
    "RunsTable",
    "widgets_enabled",
]

_LAZY = {
    "DeployCard": "deploy_card",
    "RunView": "run_view",
    "NodeRow": "run_view",
    "RunsTable": "tables",
    "ModelsTable": "tables",
    "FunctionsTable": "tables",
    "DatasetsTable": "tables",
    "ClusterView": "tables",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbdeploy.widgets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
