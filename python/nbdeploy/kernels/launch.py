"""What the ``nbdeploy`` and ``nbdeploy-gpu`` kernelspecs run: ``python -m nbdeploy.kernels.launch [--gpu] -f FILE``.

An IPython kernel (ipykernel's ``IPKernelApp``) of the interpreter it is started with, that on start loads the
nbdeploy magics (``%load_ext nbdeploy``, so a notebook's first cell can be ``%%deploy``) and connects to the
advertised cluster in the background (:mod:`.startup`); with ``--gpu`` it asks for a ``cuda`` cluster and prints the
GPUs it sees.
"""

from __future__ import annotations

import sys

__all__ = ["kernel_arguments", "main"]


def kernel_arguments(argv: list[str]) -> list[str]:
    """ipykernel's arguments for ``argv`` (this module's own ``--gpu`` taken out, the startup added)."""
    gpu = "--gpu" in argv
    rest = [a for a in argv if a != "--gpu"]
    startup = f"__import__('nbdeploy.kernels.startup').kernels.startup.on_start(gpu={gpu!r})"
    return [*rest, "--IPKernelApp.extensions=['nbdeploy']", f"--IPKernelApp.exec_lines=[{startup!r}]"]


def main(argv: list[str] | None = None) -> None:
    """Start the kernel (returns when it exits)."""
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=kernel_arguments(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
