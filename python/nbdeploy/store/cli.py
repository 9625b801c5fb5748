"""``nbdeploy store ls|gc``: the artifact store of the default app."""

from __future__ import annotations

import click

from ..cli import echo_json, get_app

__all__ = ["store"]


@click.group()
def store() -> None:
    """Inspect and clean the artifact store."""


@store.command("ls")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def store_ls(kind: str | None, as_json: bool) -> None:
    """List the newest version of every stored name (of KIND: function, job, model, dataset, artifact)."""
    versions = get_app().store.list(kind)
    if as_json:
        echo_json([v.to_json() for v in versions])
        return
    if not versions:
        click.echo("nothing stored" + (f" of kind {kind}" if kind else ""))
        return
    for v in versions:
        aliases = f"  [{', '.join(v.aliases)}]" if v.aliases else ""
        click.echo(
            f"{v.kind:<9} {v.name:<32} v{v.version:<4} {v.size:>12,d} B  "
            f"{v.created_at:%Y-%m-%d %H:%M:%S}  {v.sha256[:12]}{aliases}"
        )


@store.command("gc")
@click.option("--grace", default=600.0, show_default=True, help="Keep unreferenced blobs younger than this (s).")
def store_gc(grace: float) -> None:
    """Remove blobs that no version references any more, and temporary files crashed writes left."""
    report = get_app().store.gc(grace)
    leftovers = f" and {report.temporaries} temporary file(s) left by crashed writes" if report.temporaries else ""
    click.echo(
        f"removed {len(report.removed) - report.temporaries} blob(s){leftovers}, freed {report.bytes_freed:,d} bytes, "
        f"kept {report.kept}"
    )
