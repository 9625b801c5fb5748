"""``nbdeploy tokens create|list|revoke``: thin over :class:`~nbdeploy.tokens.manager.TokenManager`."""

from __future__ import annotations

import click


def _manager():
    from ..cli import get_app

    return get_app().tokens


@click.group()
def tokens() -> None:
    """Scoped API tokens for `nbdeploy serve`: read, invoke:<glob>, deploy:<glob>, admin."""


@tokens.command()
@click.option("--scope", "scopes", multiple=True, required=True, help="read, admin, invoke:<glob> or deploy:<glob>.")
@click.option("--name", default="token", show_default=True, help="What the token is for (a name).")
@click.option("--expires", default=None, help="Lifetime: 30d, 12h, 90m, 2w (default: never).")
def create(scopes: tuple[str, ...], name: str, expires: str | None) -> None:
    """Issue a token; its secret is printed as the last line, this once (only its hash is kept)."""
    import getpass

    new = _manager().create(list(scopes), name, expires, owner=getpass.getuser())
    info = new.info
    until = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "never"
    click.echo(f"token {info.id} ({info.name}): scopes {' '.join(info.scopes)}; expires {until}", err=True)
    click.echo("send it as 'Authorization: token <TOKEN>'; it is shown only now:", err=True)
    click.echo(new.token)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_(as_json: bool) -> None:
    """List tokens: id, name, scopes, expiry, last use (never the secrets)."""
    from ..cli import echo_json

    found = _manager().list()
    if as_json:
        echo_json(found.to_json())
        return
    if not found.tokens:
        click.echo("no tokens: `nbdeploy tokens create --scope read` issues one")
        return
    click.echo(f"{'id':>4}  {'name':<16} {'prefix':<12} {'state':<8} {'last used':<20} {'expires':<20} scopes")
    for t in found.tokens:
        state = "active" if t.active else "revoked" if t.revoked_at else "expired"
        used = t.last_used_at.isoformat(timespec="seconds")[:19] if t.last_used_at else "-"
        until = t.expires_at.isoformat(timespec="seconds")[:19] if t.expires_at else "never"
        click.echo(f"{t.id:>4}  {t.name:<16} {t.prefix:<12} {state:<8} {used:<20} {until:<20} {' '.join(t.scopes)}")


@tokens.command()
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID: every server refuses it within seconds."""
    info = _manager().revoke(token_id)
    click.echo(f"revoked token {info.id} ({info.name})")
