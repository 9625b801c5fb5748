"""Pipelines: DAGs of notebooks (``NAME.pipeline.yaml``), each node a job run on the Dask cluster, passing named
outputs (``nbd.output``) downstream and skipping nodes whose inputs did not change.

``nbd.pipelines.<method>`` is the method of the default :class:`~nbdeploy.app.Nbdeploy`'s :class:`PipelineManager`
(``nbd.pipelines.put("daily.pipeline.yaml")``, ``nbd.pipelines.run("daily", wait=True)``). Importing this package
imports neither Dask nor papermill.
"""

from __future__ import annotations

from ..app import delegate
from .records import NodeState, PipelineInfo, PipelineList, PipelineRun, PipelineRunList
from .spec import Pipeline, SpecError

__all__ = ["NodeState", "Pipeline", "PipelineInfo", "PipelineList", "PipelineRun", "PipelineRunList", "SpecError"]

__getattr__, __dir__ = delegate(__name__, "pipelines")
