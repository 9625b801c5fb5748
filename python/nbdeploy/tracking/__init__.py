"""Experiment tracking that MLflow's own client writes to: the server answers MLflow's tracking REST API under
``<server>/nbdeploy/mlflow`` (``mlflow.set_tracking_uri("http://HOST:PORT/nbdeploy/mlflow")``), backed by the
catalog and the store. Tracked runs are records of their own, listed beside job runs (``nbd.runs.tracked()``).

``nbd.tracking.<method>`` is the method of the default :class:`~nbdeploy.app.Nbdeploy`'s :class:`TrackingManager`.
"""

from __future__ import annotations

from ..app import delegate

__all__: list[str] = []

__getattr__, __dir__ = delegate(__name__, "tracking")
