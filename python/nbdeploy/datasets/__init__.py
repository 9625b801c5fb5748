"""Datasets: versioned Parquet data in the store with profiles (auto-EDA) and lineage.

``nbd.datasets.<method>`` is the method of the default :class:`~nbdeploy.app.Nbdeploy`'s :class:`DatasetManager`
(``nbd.datasets.put(df, "sales")``, ``nbd.datasets.get("sales", columns=["day"])``, ``nbd.datasets.profile("sales")``).
"""

from __future__ import annotations

from ..app import delegate

__all__: list[str] = []

__getattr__, __dir__ = delegate(__name__, "datasets")
