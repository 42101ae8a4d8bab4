"""`kgqa keys`: create, list and revoke API keys (stored hashed in Redis; a key is shown once);
`kgqa audit`: read the audit log of catalog writes."""

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
    """API keys with roles chat, catalog, orders, analyst, admin (admin implies every role).

    catalog writes products, brands, categories, suppliers, promotions, policies, FAQs, shipping and
    payment methods and shop examples; orders writes customers, orders and order items."""


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


@click.command("audit")
@click.option("--key-id", default=None, help="Only writes by this API key id (or cli:<user>).")
@click.option("--node", "--sku", "node", default=None, help="Only writes to this node key (sku, order id, ...).")
@click.option("--since", default=None, help="Only writes at or after this ISO 8601 date or time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Entries to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (all fields, values in full).")
def audit_command(key_id: str | None, node: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """The audit log of catalog writes, newest first: who, where (route, or job, file and line),
    which node, and the old and new values of what changed."""
    from api.services import Services
    from common.settings import Settings
    from kg.audit import parse_since

    try:
        since_ms = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    services = Services.from_settings(Settings())
    try:
        entries: list[dict] = []
        cursor = None
        while len(entries) < limit:
            page, cursor = services.audit.read(key_id=key_id, node=node, since_ms=since_ms, cursor=cursor,
                                               limit=min(500, limit - len(entries)))
            entries.extend(page)
            if cursor is None:
                break
    finally:
        services.close()
    if as_json:
        for e in entries:
            click.echo(json.dumps(e, ensure_ascii=False, default=str))
        return
    if not entries:
        click.echo("no entries")
    for e in entries:
        where = e["route"] or (f"{e['file']}:{e['line']}" if e["line"] else e["file"]) or "-"
        if e["job_id"]:
            where += f" (job {e['job_id']})"
        if e["old"] and e["new"]:
            change = ", ".join(f"{k}: {_short(e['old'].get(k))} -> {_short(e['new'].get(k))}" for k in e["new"])
        else:
            change = ", ".join(f"{k}={_short(v)}" for k, v in (e["new"] or e["old"] or {}).items() if v is not None)
        click.echo(f"{e['at']}  {e['key_id']:<12} {e['action']:<8} {e['label']} {e['node']}  [{where}]  {change}")


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
