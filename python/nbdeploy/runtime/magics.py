"""``%cluster``: the Dask cluster nbdeploy runs on (workers, threads, memory, tasks, the dashboard link)."""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class

from ..exceptions import NbdeployError

__all__ = ["ClusterMagics"]


@magics_class
class ClusterMagics(Magics):
    """The ``%cluster`` line magic."""

    @line_magic
    def cluster(self, line: str) -> Any:
        """``%cluster``: the cluster's status (a view that refreshes, in a notebook; text elsewhere)."""
        from ..app import default
        from ..widgets import widgets_enabled

        if widgets_enabled():
            from IPython.display import display

            from ..widgets import ClusterView

            display(ClusterView(default()))
            return None
        try:
            status = default().runtime.status()
        except NbdeployError as exc:
            print(f"error: {exc}")
            return None
        print(
            f"{status['mode']} cluster at {status['scheduler_address']}: {len(status['workers'])} worker(s), "
            f"{status['total_threads']} threads, {status['tasks_running']} task(s) running"
        )
        for w in status["workers"]:
            print(
                f"  {w['name']}: {w['nthreads']} threads, {w['memory_limit'] / 2**30:.1f} GiB, {w['executing']} executing"
            )
        return None
