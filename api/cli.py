"""`kgqa keys`: create, list and revoke API keys (stored hashed in Redis; a key is shown once)."""

from __future__ import annotations

import json

import click

from api.auth import ROLES


def _keystore():
    from api.auth import KeyStore
    from api.services import Services
    from common.settings import Settings

    services = Services.from_settings(Settings())
    return KeyStore(services.redis_call, services.prefix), services


@click.group("keys")
def keys_command() -> None:
    """API keys with roles chat, catalog, analyst, admin (admin implies every role)."""


@keys_command.command("create")
@click.option("--name", required=True, help="Who or what the key is for (shown in listings).")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES),
              help="A role; repeat for several.")
@click.option("--rate-limit", type=click.IntRange(min=0), default=None,
              help="Requests per minute for this key (default: API_RATE_LIMIT_PER_MINUTE).")
def create(name: str, roles: tuple[str, ...], rate_limit: int | None) -> None:
    """Create a key and print it (it cannot be shown again)."""
    store, services = _keystore()
    try:
        key, rec = store.create(name, roles, rate_limit_per_minute=rate_limit)
    finally:
        services.close()
    click.echo(f"key id: {rec.key_id}\nroles:  {', '.join(rec.roles)}\n\n{key}\n\n"
               "Store it now: only its hash is kept.")


@keys_command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_keys(as_json: bool) -> None:
    """List keys (ids, names, roles, dates; never the keys themselves)."""
    store, services = _keystore()
    try:
        records = [r.public() for r in store.list()]
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("no keys")
    for r in records:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        click.echo(f"{r['key_id']}  {r['name']:<24} {','.join(r['roles']):<28} {r['created_at']}  {state}")


@keys_command.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key by its id (takes effect on the next request, on every worker)."""
    store, services = _keystore()
    try:
        ok = store.revoke(key_id.strip())
    finally:
        services.close()
    if not ok:
        raise click.ClickException(f"no key with id {key_id!r}")
    click.echo(f"revoked {key_id}")
