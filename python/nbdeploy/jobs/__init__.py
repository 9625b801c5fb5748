"""Jobs: notebooks run with papermill on the Dask cluster, now or on a cron schedule, and their run history.

One service with three managers on the app: ``app.jobs`` (:class:`JobManager`: notebooks as versioned jobs, runs
started now), ``app.schedules`` (:class:`ScheduleManager`: cron schedules) and ``app.runs`` (:class:`RunManager`:
the run history). ``nbd.jobs.put(path, "report")``, ``run = nbd.jobs.run("report", parameters={...})``
(``run.wait()``, ``run.status``, ``run.output()``, ``run.log()``, ``run.metrics``, ``run.cancel()``) use the default
app. Importing this package imports neither Dask nor papermill.
"""

from __future__ import annotations

from ..app import delegate

__getattr__, __dir__ = delegate(__name__, "jobs")
