"""``python -m nbdeploy.runtime.daemon``: the background process of ``nbdeploy cluster start``.

It starts the cluster of the current settings, owns it, advertises it in ``<home>/runtime/cluster.json`` and
serves until SIGTERM (``nbdeploy cluster stop``) or until the cluster is shut down from outside.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse ``--workers/--threads/--memory-limit`` and run the cluster; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m nbdeploy.runtime.daemon")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-limit", default=None)
    args = parser.parse_args(argv)
    from .control import run_daemon

    return run_daemon(args.workers, args.threads, args.memory_limit)


if __name__ == "__main__":  # worker processes (spawned) import this module too: keep the guard
    sys.exit(main())
