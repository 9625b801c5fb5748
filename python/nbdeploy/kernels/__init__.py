"""Kernels: the kernelspecs nbdeploy ships and the warm kernel pool of each Dask worker.

- :mod:`.kernelspecs` (data) holds the ``nbdeploy`` and ``nbdeploy-gpu`` kernelspecs, installed with the wheel into
  ``share/jupyter/kernels``; :mod:`.launch` is what they run (an IPython kernel that loads the magics and connects
  to the advertised cluster on start), :mod:`.startup` what it does once started.
- :mod:`.specs` finds the kernelspecs of this machine (on a worker: the ones it can run) and names the pool's keys.
- :mod:`.pool` keeps, on each worker, a few started kernels per (kernelspec, environment hash), each used by one run
  and then discarded; :mod:`.starter` starts, readies, hands over and discards them (IPC transport, private folder).
- :mod:`.manager` (``app.kernels``) asks the workers what they can run and how their pools stand; :mod:`.handlers`
  (``GET /kernels``) and :mod:`.cli` (``nbdeploy kernels list``) show it.

Nothing here imports Dask, papermill or jupyter_client at module level.
"""

from __future__ import annotations

__all__: list[str] = []
