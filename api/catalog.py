"""Catalog routes (`catalog` role): imports as jobs, one product at a time, and shop examples
(labelled customer messages, nlu/example_store.py; docs/shop-examples.md).

Roles follow the data: `catalog` writes products and the store's own data (brands, categories,
suppliers, promotions, policies, FAQs, shipping and payment methods, shop examples); customers,
orders and order items need `orders` (`admin` implies both). An import names its files, so the
route refuses, before anything is written, every file the key may not write (403, naming them).

The product rules (replace, patch, discontinue, remove) are the catalog service's
(kg/catalog/service.py), shared with the command line: single-product writes go through the
importer itself, so a change is validated like an import row and visible to chat at once. The
views parse, check the caller's rights, call the service and map its errors. Every write goes to
the audit log (kg/audit.py) with the key, the route or the job's file and line, and the old and
new values: the views hand the service a sink that knows the key and the route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from api import schemas as S
from api.auth import require
from api.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
    field_details,
)
from api.openapi import doc, qparam
from kg.catalog.service import (
    ProductChange,
    ProductChanged,
    ProductInOrders,
    ProductNotFound,
    ProductRejected,
)
from kg.catalog.validation import FILE_TYPES

bp = Blueprint("catalog", __name__, url_prefix="/api/v1/catalog")

MAX_FILES = 20
_FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9 ._-]{0,120}\.(csv|jsonl)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

SKU_PATH = {"sku": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]*$"}}
JOB_PATH = {"job_id": {"type": "string", "minLength": 8, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"}}


# Import file types and the role that may write them (any other type: `catalog`).
FILE_ROLES = {"customers": "orders", "orders": "orders", "order_items": "orders"}


def _services() -> Any:
    return current_app.extensions["kgqa"]


def file_role(name: str, kind: str | None = None) -> str | None:
    """The role an import file needs, by its type (else its name); None for a file of no known type:
    the importer reports it."""
    from kg.catalog.validation import file_type

    if kind is None:
        named = file_type(name)
        kind = named[0] if named else None
    return FILE_ROLES.get(kind, "catalog") if kind else None


def _bad_type(message: str, field: str = "type") -> Unprocessable:
    return Unprocessable(message, details=field_details([{"field": field, "message": message, "type": "file_type"}]))


def _explicit_types(names: list[str]) -> dict[str, str]:
    """File types given in the form: `type` for every file, `type.<file name>` for one (it wins)."""
    from common.errors import ImportError_
    from kg.catalog.validation import file_type
    from kg.loader import check_type

    given = {k: v for k, v in request.form.items() if k == "type" or k.startswith("type.")}
    out: dict[str, str] = {}
    try:
        if (every := given.pop("type", "").strip()):
            kind = check_type(every)
            named = {t[0] for n in names if (t := file_type(n))}
            if len(names) > 1 and (len(named) > 1 or (named and kind not in named)):
                raise _bad_type(f"the type {kind!r} applies to every file, but their names say "
                                f"{', '.join(sorted(named))}: use `type.<file name>` per file instead")
            out = dict.fromkeys(names, kind)
        for key, value in given.items():
            name = key[5:].strip().lower()
            if name not in names:
                raise _bad_type(f"`{key[:80]}` names no uploaded file", key[:80])
            out[name] = check_type(value)
    except ImportError_ as exc:
        raise _bad_type(exc.message) from None
    return out


def _audit(services: Any) -> Any:
    """The audit sink of this request's writes: the key and the route."""
    return services.audit.sink(key_id=g.principal.key_id, route=f"{request.method} {request.path}")


# -- imports ----------------------------------------------------------------------------------------------
@bp.post("/import")
@doc(summary="Import catalog files (a job)", tag="catalog", reply=S.ImportJob, status=202,
     multipart={"type": "object", "required": ["files"],
                "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                         "description": "products.csv, orders.jsonl, ... (DESIGN section 3)"},
                               "type": {"type": "string", "enum": list(FILE_TYPES),
                                        "description": "Read every file as this type, whatever its name"},
                               "type.{file name}": {"type": "string", "enum": list(FILE_TYPES),
                                                    "description": "Read this one file as this type"}}},
     params=[qparam("strict", {"type": "boolean"}, "Write nothing unless every row is good"),
             qparam("dry_run", {"type": "boolean"}, "Validate and report; write nothing"),
             qparam("create_missing", {"type": "boolean"},
                    "With strict: create brands and categories that products name but nothing defines")],
     description="Starts an import job and returns it at once (202); poll `GET /catalog/import/{job_id}` "
                 "for progress and the per-row report. The files and their columns: "
                 "[docs/import-format.md](/api/v1/docs/import-format.md). A file's type comes from the "
                 "form field `type.<file name>`, else `type` (every file), else its name (`products.csv`), "
                 "else its header row; a file of no type is reported as failed. `customers`, `orders` and "
                 "`order_items` files need the `orders` role, every other file the `catalog` role; a file "
                 "the key may not write refuses the whole import (403, `details.files`) before anything is "
                 "written. The job records the key; every write goes to the audit log.",
     errors={403: "The key has neither the `catalog` nor the `orders` role, or may not write some of the "
                  "files (`details.files`, `details.roles`).",
             409: "Another import is running for this graph (`details.job_id`)."})
@require("catalog", "orders", rate_bucket="import")
def start_import():
    strict = S.query_bool("strict")
    dry_run = S.query_bool("dry_run")
    create_missing = S.query_bool("create_missing")
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("an import is multipart/form-data with files in the field `files`",
                                   details={"got": (request.mimetype or None)})
    uploads = request.files.getlist("files")
    if not uploads:
        raise Unprocessable("no files in the field `files`",
                            details=field_details([{"field": "files", "message": "required", "type": "missing"}]))
    if len(uploads) > MAX_FILES:
        raise PayloadTooLarge(f"at most {MAX_FILES} files per import")
    named: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for f in uploads:
        name = (f.filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip().lower()
        if not _FILE_NAME.match(name):
            raise Unprocessable("each file needs a plain .csv or .jsonl name, e.g. products.csv or orders.jsonl",
                                details=field_details([{"field": "files", "message": f"bad file name {name[:60]!r}",
                                                        "type": "file_name"}]))
        if name in seen:
            raise Unprocessable("a file name appears twice",
                                details=field_details([{"field": "files", "message": name, "type": "duplicate"}]))
        seen.add(name)
        named.append((name, f))
    types = _explicit_types([name for name, _ in named])
    principal = g.principal
    refused = [(name, role) for name, f in named
               if (role := file_role(name, _upload_type(name, f, types.get(name)))) and not principal.has(role)]
    if refused:
        roles = sorted({role for _, role in refused})
        files = [name for name, _ in refused]
        raise Forbidden(f"this API key may not import {', '.join(files)} (they need the "
                        f"{' or '.join(f'`{r}`' for r in roles)} role); nothing was imported",
                        details={"files": files, "roles": roles})
    job = _services().jobs.start(named, strict=strict, dry_run=dry_run, create_missing=create_missing,
                                 types=types, key_id=principal.key_id)
    return jsonify(S.ImportJob.model_validate(job).model_dump(mode="json")), 202


def _upload_type(name: str, storage: Any, explicit: str | None) -> str | None:
    """The type an upload imports as (its header read when neither the form nor its name says)."""
    from kg.loader import peek_type

    return peek_type(name, storage.stream, explicit=explicit,
                     max_field_bytes=_services().settings.import_max_field_bytes)


@bp.get("/import/<job_id>")
@doc(summary="An import job: status, progress, report", tag="catalog", reply=S.ImportJob, path_params=JOB_PATH)
@require("catalog", "orders")
def import_status(job_id: str):
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", job_id):
        raise NotFound("no such import job")
    job = _services().jobs.get(job_id)
    if job is None:
        raise NotFound("no such import job")
    return jsonify(S.ImportJob.model_validate(job).model_dump(mode="json"))


# -- products ---------------------------------------------------------------------------------------------
def _check_sku(sku: str) -> str:
    if not sku or len(sku) > 200 or _CONTROL.search(sku) or sku != sku.strip():
        raise NotFound("no such product")
    return sku


@contextmanager
def _product_errors() -> Iterator[None]:
    """The catalog service's refusals as this API's errors."""
    try:
        yield
    except ProductNotFound:
        raise NotFound("no such product") from None
    except ProductRejected as exc:
        raise Unprocessable(exc.message, details=field_details(
            {"field": e.column or "", "message": e.reason, "type": "import_row"} for e in exc.errors)) from None
    except ProductInOrders as exc:
        raise Conflict(exc.message, details={"orders": exc.orders}) from None
    except ProductChanged as exc:
        raise Conflict(exc.message) from None


def _out(props: dict[str, Any]) -> dict[str, Any]:
    fields = S.ProductOut.model_fields
    return S.ProductOut.model_validate({k: v for k, v in props.items() if k in fields}).model_dump(mode="json")


def _change(change: ProductChange) -> dict[str, Any]:
    return S.ProductChange(product=_out(change.product) if change.product else None, created=change.created,
                           changed=change.changed, catalog_version=change.catalog_version,
                           warnings=[{"message": w} for w in change.warnings]).model_dump(mode="json")


@bp.get("/products/<sku>")
@doc(summary="One product", tag="catalog", reply=S.ProductOut, path_params=SKU_PATH)
@require("catalog")
def get_product(sku: str):
    props = _services().catalog.product(_check_sku(sku))
    if props is None:
        raise NotFound("no such product")
    return jsonify(_out(props))


@bp.put("/products/<sku>")
@doc(summary="Create or replace a product", tag="catalog", body=S.ProductPut, reply=S.ProductChange,
     extra_replies={201: S.ProductChange}, path_params=SKU_PATH,
     description="Every column is replaced: one left out becomes empty. Validated like an import row.")
@require("catalog")
def put_product(sku: str):
    sku = _check_sku(sku)
    body = S.parse_body(S.ProductPut, _services().settings)
    with _product_errors():
        change = _services().catalog.replace(sku, body.model_dump(), audit=_audit(_services()))
    return jsonify(_change(change)), 201 if change.created else 200


@bp.patch("/products/<sku>")
@doc(summary="Change some fields of a product", tag="catalog", body=S.ProductFields, reply=S.ProductChange,
     path_params=SKU_PATH,
     description="Only the fields given change; `attributes` are merged key by key (null removes a key).")
@require("catalog")
def patch_product(sku: str):
    sku = _check_sku(sku)
    body = S.parse_body(S.ProductFields, _services().settings)
    with _product_errors():
        change = _services().catalog.patch(sku, body.model_dump(exclude_unset=True), audit=_audit(_services()))
    return jsonify(_change(change))


@bp.delete("/products/<sku>")
@doc(summary="Discontinue (or remove) a product", tag="catalog", reply=S.ProductChange, path_params=SKU_PATH,
     params=[qparam("hard", {"type": "boolean"},
                    "Remove the node instead of discontinuing it (admin role, API_ALLOW_HARD_DELETE, and "
                    "only when no order contains it)")],
     errors={403: "The key lacks the `catalog` role, or a hard delete is not allowed here.",
             409: "A hard delete of a product that orders contain (discontinue it instead)."})
@require("catalog")
def delete_product(sku: str):
    sku = _check_sku(sku)
    hard = S.query_bool("hard")
    services = _services()
    with _product_errors():
        if not hard:
            return jsonify(_change(services.catalog.discontinue(sku, audit=_audit(services))))
        if services.catalog.product(sku) is None:
            raise ProductNotFound("no such product")
        if not services.settings.api_allow_hard_delete or not g.principal.has("admin"):
            raise Forbidden("hard deletes are not allowed (API_ALLOW_HARD_DELETE and the admin role are needed)")
        return jsonify(_change(services.catalog.remove(sku, audit=_audit(services))))


# -- shop examples (nlu/example_store.py) ---------------------------------------------------------------
EXAMPLE_PATH = {"example_id": {"type": "string", "pattern": "^[0-9a-f]{12}$"}}
_EXAMPLE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,120}\.(csv|jsonl)$", re.IGNORECASE)
MAX_PROBLEMS = 500  # per-row details in a 422


def _examples() -> Any:
    from nlu.example_store import ExampleStore

    return ExampleStore(_services().graph)


def _refresh_examples() -> None:
    """This worker reloads its shop examples now; the others within SHOP_EXAMPLES_REFRESH_S."""
    services = _services()
    if not services.engine_loaded:
        return  # a model not loaded yet reads the examples when it is
    sync = getattr(services.engine(), "examples", None)
    if sync is not None:
        sync.refresh(force=True)


def _example_rows() -> tuple[list[Any], list[Any], bool]:
    """(rows, errors found while reading, strict) from a JSON body or uploaded files."""
    from nlu.example_store import read_examples_file, rows_from_dicts

    strict = S.query_bool("strict")
    if request.mimetype == "multipart/form-data":
        uploads = request.files.getlist("files")
        if not uploads:
            raise Unprocessable("no files in the field `files`", details=field_details([{"field": "files", "message": "required", "type": "missing"}]))
        if len(uploads) > MAX_FILES:
            raise PayloadTooLarge(f"at most {MAX_FILES} files per request")
        rows: list[Any] = []
        errors: list[Any] = []
        seen: set[str] = set()
        for f in uploads:
            name = (f.filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip()
            if not _EXAMPLE_FILE.match(name):
                raise Unprocessable("shop examples are a .csv or .jsonl file",
                                    details=field_details([{"field": "files", "message": f"bad file name {name[:60]!r}",
                                                                          "type": "invalid"}]))
            if name.lower() in seen:
                raise Unprocessable("a file name appears twice", details=field_details([{"field": "files", "message": name, "type": "duplicate"}]))
            seen.add(name.lower())
            parsed = read_examples_file(f.read(), name)
            rows.extend(parsed.rows)
            errors.extend(parsed.errors)
        form_strict = (request.form.get("strict") or "").strip().lower()
        return rows, errors, strict or form_strict in ("true", "1", "yes")
    body = S.parse_body(S.ShopExamplesAdd, _services().settings)
    return rows_from_dicts(e.model_dump() for e in body.examples), [], strict or body.strict


@bp.get("/examples")
@doc(summary="The shop examples and their version", tag="catalog", reply=S.ShopExampleList,
     description="Labelled customer messages that adapt understanding without retraining (docs/shop-examples.md).")
@require("catalog")
def list_examples():
    store = _examples()
    items = store.list()
    return jsonify(S.ShopExampleList(version=store.version(), count=len(items),
                                     examples=[e.to_dict() for e in items]).model_dump(mode="json"))


@bp.post("/examples")
@doc(summary="Add shop examples", tag="catalog", body=S.ShopExamplesAdd, reply=S.ShopExamplesReport,
     multipart={"type": "object", "required": ["files"],
                "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                         "description": "A .csv (header `text,intent`) or .jsonl file"},
                               "strict": {"type": "boolean"}}},
     params=[qparam("strict", {"type": "boolean"}, "Write nothing unless every row is good")],
     description="A JSON body `{examples: [{text, intent}], strict}` or multipart files in the field `files`. "
                 "Returns the per-row report (added, unchanged, errors, contradictions); a 422 with the "
                 "per-row problems as details when nothing could be added. The key id is recorded as "
                 "`added_by`; every worker uses the examples within SHOP_EXAMPLES_REFRESH_S seconds.")
@require("catalog")
def add_examples():
    rows, errors, strict = _example_rows()
    if not rows and not errors:
        raise Unprocessable("no examples in the request",
                            details=field_details([{"field": "files", "message": "no rows", "type": "missing"}]))
    report = _examples().add(rows, g.principal.key_id, strict=strict, errors=errors)
    if report.added:
        from kg.audit import Change

        _audit(_services())([Change("ShopExample", str(e.get("id")), "created", None,
                                    {"text": e.get("text"), "intent": e.get("intent")}) for e in report.added])
        _refresh_examples()
    body = report.to_dict()
    if report.problems and not report.added:
        details = [p.to_dict() for p in report.problems][:MAX_PROBLEMS]
        why = "--strict: nothing was written" if strict else "no example could be added"
        raise Unprocessable(f"{why} ({len(report.errors)} error(s), {len(report.contradictions)} "
                            f"contradiction(s))", details={"rows": details})
    return jsonify(S.ShopExamplesReport.model_validate(body).model_dump(mode="json"))


@bp.delete("/examples/<example_id>")
@doc(summary="Remove a shop example", tag="catalog", reply=S.ShopExampleRemoved, path_params=EXAMPLE_PATH)
@require("catalog")
def remove_example(example_id: str):
    from nlu.example_store import is_example_id

    if not is_example_id(example_id):
        raise NotFound("no such example")
    store = _examples()
    old = next(({"text": e.text, "intent": e.intent} for e in store.list() if e.id == example_id), None)
    if not store.remove([example_id], g.principal.key_id):
        raise NotFound("no such example")
    from kg.audit import Change

    _audit(_services())([Change("ShopExample", example_id, "deleted", old, None)])
    _refresh_examples()
    return jsonify(S.ShopExampleRemoved(id=example_id, version=store.version()).model_dump(mode="json"))
