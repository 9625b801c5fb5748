"""Imported by the fork server of a cluster daemon, and by nothing else (see :func:`.launch.forkserver_env`).

Importing it imports the modules named in ``NBDEPLOY_FORKSERVER_IMPORTS`` (Dask, nbdeploy's serving modules, the
``worker_preload_modules`` setting), so that every worker process forked from the server starts with them imported.
A module that cannot be imported is logged and skipped (:func:`.preload.import_modules`): a fork server that failed
here would leave the cluster without workers.
"""

from __future__ import annotations

import os

from .launch import IMPORTS_VARIABLE

if os.environ.get(IMPORTS_VARIABLE):
    from .preload import import_modules

    import_modules(name for name in os.environ.pop(IMPORTS_VARIABLE).split(",") if name)
