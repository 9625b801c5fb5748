"""``%cluster``: the Dask cluster nbdeploy runs on (workers, threads, memory, tasks, the dashboard link);
``%cluster scale N`` scales it."""

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
        """``%cluster``: the cluster's status (a view that refreshes, with a worker count to scale to, in a
        notebook; text elsewhere). ``%cluster scale N``: scale the cluster nbdeploy owns to N workers."""
        from ..app import default
        from ..widgets import widgets_enabled

        words = line.split()
        if words and words[0] == "scale":
            if len(words) != 2 or not words[1].isdigit():
                print("usage: %cluster scale N   (N: the number of workers)")
                return None
            try:
                default().runtime.scale(int(words[1]))
            except NbdeployError as exc:
                print(f"error: {exc}")
                return None
        elif words:
            print("usage: %cluster   or   %cluster scale N")
            return None
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
