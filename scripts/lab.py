"""`make lab`: open JupyterLab with the nbdeploy extension, the example notebooks, and the embedded store
and cluster (the server extension starts and advertises the cluster; `~/.nbdeploy` holds the store)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    args = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT / 'examples'}"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    if not (os.environ.get("DISPLAY") or sys.platform == "darwin"):
        args.append("--no-browser")  # headless: print the URL to open instead
    args += sys.argv[1:]
    print("starting:", " ".join(args), flush=True)
    os.execv(sys.executable, args)


if __name__ == "__main__":
    sys.exit(main())
