"""The catalog service: the one way catalog managers change the catalog, from the command line
(`kgqa import`, import_scripts/cli.py) and over HTTP (api/catalog.py, api/jobs.py).

File imports go through the importer (kg/loader.py). Single-product writes do too, as a strict
one-row `products.jsonl`, so the validation rules, the reference checks, the content hash and the
catalog version bump are exactly those of a file import: a change is visible to chat at once.
The product rules live here, not in the views: a replace sets every column (one left out becomes
empty), a patch changes only the fields given and merges `attributes` key by key (None removes a
key), a delete discontinues, and a removal is refused while any order contains the product.
Who may do what (roles, API_ALLOW_HARD_DELETE) is the caller's to decide.

Every write can be described to an audit sink (kg/audit.py): the caller passes `audit=`, a sink
that already knows who asked and from where (the API key and route, the import job, or
`cli:<user>`). Imports and single-product writes hand it to the importer, which records each
batch's changes with their old values; a removal records the product as it was.

With `vectors` (LINKING_VECTORS=graph, given by the composition root), every write that created or
changed rows is followed by `fill_vectors`: changed products get their vector text worked out again
and texts without a vector are embedded and stored in the graph (kg/embeddings.py), so entity
linking finds new and renamed products by meaning at once, and a price or stock change embeds nothing.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from common.errors import KGQAError
from common.settings import Settings
from kg.audit import AuditSink, Change
from kg.embeddings import Embed, Progress, TextOf, fill_embeddings
from kg.loader import ImportReport, RowError, import_files, import_path
from kg.queries.catalog import PRODUCT_BY_SKU, PRODUCT_HARD_DELETE, PRODUCT_ORDER_COUNT
from kg.queries.loader import BUMP_VERSION
from kg.schema import wait_for_indexes
from kg.store import GraphStore

# The columns of a product row (DESIGN section 3), as a replace, patch or discontinue writes them.
COLUMNS = ("name", "brand", "category", "supplier_id", "price", "currency", "stock", "description",
           "warranty_months", "rating", "status", "attributes")


# -- errors -------------------------------------------------------------------------------------
class CatalogError(KGQAError):
    code = "catalog_error"


class ProductNotFound(CatalogError):
    code = "not_found"


class ProductRejected(CatalogError):
    """The importer refused the product row; `errors` says why, column by column."""

    code = "validation_error"

    def __init__(self, message: str, errors: Sequence[RowError]) -> None:
        super().__init__(message)
        self.errors = list(errors)


class ProductInOrders(CatalogError):
    """A removal of a product that orders contain (discontinue it instead)."""

    code = "conflict"

    def __init__(self, message: str, orders: int) -> None:
        super().__init__(message)
        self.orders = orders


class ProductChanged(CatalogError):
    """The product changed between the check and the removal."""

    code = "conflict"


# -- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProductChange:
    product: dict[str, Any] | None  # as stored after the change; None once removed
    created: bool
    changed: bool
    catalog_version: int | None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NameVectors:
    """How product names become vectors (given by the composition root: the linker's encoder, and
    the text of a product its vector is computed from)."""

    embed: Embed
    dimension: Callable[[], int]
    text: TextOf
    space: Callable[[], str]  # the encoder's vector space (TextEncoder.space): the vectors are stamped with it


class CatalogService:
    """`graph` returns the store with its keys and indexes in place (the composition root's
    `Container.graph`)."""

    def __init__(self, graph: Callable[[], GraphStore], settings: Settings, *, vectors: NameVectors | None = None,
                 link_index: Callable[[Sequence[str] | None], Any] | None = None) -> None:
        self._graph = graph
        self.settings = settings
        self.vectors = vectors  # product-name vectors kept in the graph (None: the linker keeps its own)
        # Brings the entity-linking index kept in the graph up to the catalog after a write (the skus an
        # edit touched, or None); None: no index in the graph (workers follow the catalog themselves).
        self.link_index = link_index

    # -- name vectors (kg/embeddings.py) -------------------------------------------------------------
    def fill_vectors(self, *, progress: Progress | None = None, skus: Sequence[str] | None = None) -> int:
        """Make the name vectors of changed products current, computing those of texts that have
        none yet (`skus`: of those products only, without a scan of the catalog); returns how many
        texts were embedded, 0 without `vectors`."""
        if self.vectors is None:
            return 0
        graph = self._graph()
        return fill_embeddings(graph, self.vectors.embed, self.vectors.dimension(), self.vectors.text,
                               space=self.vectors.space(), progress=progress, skus=skus,
                               # a whole catalog's writes look up vector texts by their index: built first
                               before_writing=lambda: wait_for_indexes(graph, self.settings.graph_index_wait_s))

    def _after_write(self, report: ImportReport, skus: Sequence[str] | None = None) -> ImportReport:
        if not report.dry_run and any(f.created or f.updated for f in report.files):
            if self.vectors is not None:
                self.fill_vectors(skus=skus)
            if self.link_index is not None:
                self.link_index(skus)
            if skus is None:  # a file import: its writes in one base file, read in seconds at the next start
                self._graph().compact()
        return report

    # -- files ------------------------------------------------------------------------------------
    def import_path(self, paths: Path | str | Sequence[Path | str], *, strict: bool = False,
                    dry_run: bool = False, create_missing: bool = False, file_type: str | None = None,
                    delimiter: str = ",", progress: bool = True, audit: AuditSink | None = None) -> ImportReport:
        return self._after_write(import_path(
            self._graph(), paths, settings=self.settings, strict=strict, dry_run=dry_run,
            create_missing=create_missing, file_type=file_type, delimiter=delimiter, progress=progress, audit=audit))

    def import_files(self, files: Mapping[str, BinaryIO], *, strict: bool = False, dry_run: bool = False,
                     create_missing: bool = False, types: Mapping[str, str] | None = None,
                     progress: bool = False, audit: AuditSink | None = None) -> ImportReport:
        return self._import(files, strict=strict, dry_run=dry_run, create_missing=create_missing, types=types,
                            progress=progress, audit=audit)

    def _import(self, files: Mapping[str, BinaryIO], *, skus: Sequence[str] | None = None,
                **options: Any) -> ImportReport:
        """The importer, then the name vectors of what it changed (`skus`: only those products)."""
        return self._after_write(import_files(self._graph(), files, settings=self.settings, **options), skus=skus)

    # -- one product ------------------------------------------------------------------------------
    def product(self, sku: str) -> dict[str, Any] | None:
        """The product's properties with `attributes` as a mapping, its brand, category and
        supplier; None when there is no such product."""
        rows = self._graph().run(PRODUCT_BY_SKU, {"sku": sku})
        if not rows or rows[0].get("product") is None:
            return None
        row = rows[0]
        props = dict(row["product"])
        attrs = props.get("attributes")
        if isinstance(attrs, str):
            try:
                attrs = json.loads(attrs)
            except ValueError:
                attrs = {}
        props["attributes"] = attrs if isinstance(attrs, dict) else {}
        props["brand"] = row.get("brand")
        props["category"] = row.get("category")
        props["supplier_id"] = row.get("supplier_id")
        return props

    def replace(self, sku: str, fields: Mapping[str, Any], *, audit: AuditSink | None = None) -> ProductChange:
        """Create or replace a product: every column is set (one left out becomes empty)."""
        return self._write(sku, fields, audit)

    def patch(self, sku: str, patch: Mapping[str, Any], *, audit: AuditSink | None = None) -> ProductChange:
        """Change only the fields given; `attributes` are merged key by key (None removes a key)."""
        current = self._existing(sku)
        changes = dict(patch)
        row = {k: current.get(k) for k in COLUMNS}
        if "attributes" in changes:
            attrs = dict(current.get("attributes") or {})
            for k, v in (changes.pop("attributes") or {}).items():
                if v is None:
                    attrs.pop(k, None)
                else:
                    attrs[k] = v
            row["attributes"] = attrs
        row.update(changes)
        return self._write(sku, row, audit)

    def discontinue(self, sku: str, *, audit: AuditSink | None = None) -> ProductChange:
        current = self._existing(sku)
        row = {k: current.get(k) for k in COLUMNS}
        row["status"] = "discontinued"
        return self._write(sku, row, audit)

    def remove(self, sku: str, *, audit: AuditSink | None = None) -> ProductChange:
        """Remove the product node and its relationships: refused while an order contains it. The
        audit sink gets the product as it was."""
        current = self._existing(sku)
        graph = self._graph()
        orders = graph.run(PRODUCT_ORDER_COUNT, {"sku": sku})
        if orders and orders[0].get("orders"):
            raise ProductInOrders("orders contain this product: discontinue it instead", int(orders[0]["orders"]))
        if not graph.run(PRODUCT_HARD_DELETE, {"sku": sku}):
            raise ProductChanged("the product changed meanwhile; try again")
        if audit is not None:
            audit([Change("Product", sku, "deleted", {"sku": sku, **{k: current.get(k) for k in COLUMNS}}, None)])
        rows = graph.run(BUMP_VERSION, {"now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        if self.link_index is not None:
            self.link_index([sku])
        return ProductChange(product=None, created=False, changed=True,
                             catalog_version=rows[0]["version"] if rows else None)

    def _existing(self, sku: str) -> dict[str, Any]:
        current = self.product(sku)
        if current is None:
            raise ProductNotFound("no such product")
        return current

    def _write(self, sku: str, fields: Mapping[str, Any], audit: AuditSink | None) -> ProductChange:
        """Upsert one product through the importer (strict): a rejected row raises `ProductRejected`."""
        record = {"sku": sku, **{k: fields.get(k) for k in COLUMNS}}
        if not record.get("attributes"):
            record["attributes"] = None
        data = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
        # Strict for the row, but a brand or category it names is created as before (with a warning).
        report = self._import({"products.jsonl": io.BytesIO(data)}, skus=[sku], strict=True, create_missing=True,
                              progress=False, audit=audit)
        if not report.ok:
            raise ProductRejected("the product is not valid", report.errors[:50])
        fr = report.files[0] if report.files else None
        return ProductChange(product=self.product(sku), created=bool(fr and fr.created),
                             changed=bool(fr and (fr.created or fr.updated)), catalog_version=report.version,
                             warnings=list(report.warnings[:20]))
