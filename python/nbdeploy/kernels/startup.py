"""What an ``nbdeploy`` kernel does once started (see :mod:`.launch`): connect to the advertised cluster in a
background thread (never starting one, never delaying the first cell; a kernel without a cluster still works, and
``%%deploy`` then connects or starts one as it always does), and for ``nbdeploy-gpu`` print the GPUs it sees."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading

__all__ = ["gpus", "on_start"]

log = logging.getLogger("nbdeploy.kernels")


def gpus() -> list[str]:
    """The GPUs this kernel sees (``nvidia-smi -L`` lines, limited by ``CUDA_VISIBLE_DEVICES``); empty when none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith("GPU ")]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() != "":
        wanted = {v.strip() for v in visible.split(",")}
        lines = [line for i, line in enumerate(lines) if str(i) in wanted or any(w in line for w in wanted)]
    return lines


def _connect() -> None:
    from ..exceptions import NbdeployError
    from ..runtime.cluster import sync_client

    try:
        client = sync_client(start=False)
        log.info("nbdeploy kernel: connected to the cluster at %s", client.scheduler.address)
    except NbdeployError as exc:
        log.info("nbdeploy kernel: no cluster connected yet (%s)", exc)
    except Exception as exc:  # never break the kernel over the cluster
        log.warning("nbdeploy kernel: connecting to the cluster failed: %s", exc)


def on_start(gpu: bool = False) -> None:
    """Run once in a starting ``nbdeploy`` kernel: print the GPUs (``gpu``), connect to the cluster in the
    background. Returns at once."""
    if gpu:
        seen = gpus()
        print("nbdeploy-gpu kernel: " + ("; ".join(seen) if seen else "no GPU visible (nvidia-smi found none)"))
    threading.Thread(target=_connect, name="nbdeploy-kernel-connect", daemon=True).start()
