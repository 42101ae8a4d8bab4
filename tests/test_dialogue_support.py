"""Shared pieces of the dialogue tests: a small shop written with named write queries, a scripted
understander (a fake of the model collaborator: the test says what the model understood), and a
`Chat` helper that plays a conversation against a real engine on a real embedded FalkorDB.

The shop is shaped to exercise every rule: a model line in three colours (ambiguous mention), a
sku-level return policy beating a brand one beating a category one (through the hierarchy)
beating the store-wide one, a product with its own warranty, accessories that name the device
they fit, co-purchases, orders in every status for two customers, and promotions in force,
expired and future. "Today" is pinned to 2026-03-15 by the engine's clock.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import pytest

from common import bootstrap
from common.settings import Settings
from kg.backends.falkordb import FalkorDBStore
from kg.queries import Query, all_queries
from kg.schema import ensure_schema
from nlu.types import Candidate, Entity, IntentScore, Understanding
from qa.engine import Engine, TurnResult
from qa.state import SessionStore
from qa.templates import TemplateVerbalizer

NOW = datetime(2026, 3, 15, 12, 0, 0, tzinfo=UTC)

CATEGORIES = [
    {"name": "Electronics", "parent": None}, {"name": "Headphones", "parent": "Electronics"},
    {"name": "Smartphones", "parent": "Electronics"}, {"name": "Accessories", "parent": None},
    {"name": "Headphone Cases", "parent": "Accessories"}, {"name": "Furniture", "parent": None},
]
BRANDS = ["Nordic Audio", "Bose", "Sonara", "Shellcraft", "Oakhaven", "Lumina"]


def _p(sku, name, brand, category, price, stock, attrs, *, rating=4.2, warranty=None, status="active",
       description="", currency="USD"):
    return {"sku": sku, "name": name, "brand": brand, "category": category, "price": price, "currency": currency,
            "stock": stock, "attributes": json.dumps(attrs), "status": status, "rating": rating,
            "warranty_months": warranty, "description": description or f"The {name}.",
            "attr_values": [str(v).lower() for v in attrs.values()]}


PRODUCTS = [
    _p("NA-HP-000001", "Nordic Audio Aurora X2 Wireless Headphones, Black", "Nordic Audio", "Headphones", 249.99, 12,
       {"model_line": "Aurora X2", "colour": "Black", "battery_life_hours": 30}, rating=4.6,
       description="Wireless headphones with up to 30 hours of battery life."),
    _p("NA-HP-000002", "Nordic Audio Aurora X2 Wireless Headphones, Silver", "Nordic Audio", "Headphones", 249.99, 0,
       {"model_line": "Aurora X2", "colour": "Silver", "battery_life_hours": 30}, rating=4.6),
    _p("NA-HP-000003", "Nordic Audio Aurora X2 Wireless Headphones, Midnight Blue", "Nordic Audio", "Headphones",
       259.99, 3, {"model_line": "Aurora X2", "colour": "Midnight Blue", "battery_life_hours": 30}, rating=4.6),
    _p("NA-HP-000004", "Nordic Audio NA-700X Noise Cancelling Headphones, Black", "Nordic Audio", "Headphones",
       349.99, 5, {"model_line": "NA-700X", "colour": "Black", "battery_life_hours": 40}, rating=4.8, warranty=36),
    _p("BO-HP-000005", "Bose QuietComfort 45 Headphones, Black", "Bose", "Headphones", 329.00, 7,
       {"model_line": "QuietComfort 45", "colour": "Black", "battery_life_hours": 24}, rating=4.4),
    _p("BO-HP-000006", "Bose QuietComfort 45 Headphones, White", "Bose", "Headphones", 329.00, 2,
       {"model_line": "QuietComfort 45", "colour": "White", "battery_life_hours": 24}, rating=4.4),
    _p("SN-HP-000007", "Sonara Tide 3 Wireless Headphones, Sand", "Sonara", "Headphones", 129.99, 20,
       {"model_line": "Tide 3", "colour": "Sand", "battery_life_hours": 30}, rating=4.1),
    _p("SH-HC-000008", "Shellcraft Hard Shell Case for Nordic Audio Aurora X2, Black", "Shellcraft",
       "Headphone Cases", 29.99, 40, {"model_line": "Hard Shell Case for Nordic Audio Aurora X2", "colour": "Black",
                                      "compatible_with": "Nordic Audio Aurora X2"}, rating=4.3),
    _p("OA-FU-000009", "Oakhaven Fjell Sofa, Natural Oak", "Oakhaven", "Furniture", 1299.00, 4,
       {"model_line": "Fjell", "finish": "Natural Oak"}, rating=4.7),
    _p("LU-PH-000010", "Lumina Nova 5 Smartphone, 128 GB, Graphite", "Lumina", "Smartphones", 699.00, 9,
       {"model_line": "Nova 5", "storage": "128 GB", "colour": "Graphite"}, rating=4.5),
    _p("SN-HP-000011", "Sonara Halo 2 Wireless Headphones, Black", "Sonara", "Headphones", 239.00, 4,
       {"model_line": "Halo 2", "colour": "Black", "battery_life_hours": 30}, rating=4.2),
]

POLICIES = [
    {"policy_id": "POL-RETURN-STD", "type": "return", "title": "30-day returns", "days": 30, "fee": None,
     "text": "Most items can be returned within 30 days of delivery.", "scope": "store", "targets": []},
    {"policy_id": "POL-RETURN-ELEC", "type": "return", "title": "21-day returns on electronics", "days": 21,
     "fee": None, "text": "Electronics can be returned within 21 days of delivery.", "scope": "category",
     "targets": [("Category", "Electronics")]},
    {"policy_id": "POL-RETURN-NORDIC", "type": "return", "title": "45-day returns on Nordic Audio", "days": 45,
     "fee": None, "text": "Nordic Audio products can be returned within 45 days.", "scope": "brand",
     "targets": [("Brand", "Nordic Audio")]},
    {"policy_id": "POL-RETURN-AURORA", "type": "return", "title": "60-day trial on the Aurora X2 in black",
     "days": 60, "fee": None, "text": "The Aurora X2 in black has a 60-day listening trial.", "scope": "sku",
     "targets": [("Product", "NA-HP-000001")]},
    {"policy_id": "POL-RETURN-FURN", "type": "return", "title": "Returning furniture", "days": 30, "fee": 49.0,
     "text": "Furniture can be returned within 30 days; a 49.00 USD collection fee applies.",
     "scope": "category", "targets": [("Category", "Furniture")]},
    {"policy_id": "POL-REFUND-STD", "type": "refund", "title": "How refunds are paid", "days": 10, "fee": None,
     "text": "Refunds reach the original payment method within 10 business days.", "scope": "store",
     "targets": []},
    {"policy_id": "POL-WARRANTY-STD", "type": "warranty", "title": "12-month limited warranty", "days": 365,
     "fee": None, "text": "Every product is covered for 12 months.", "scope": "store", "targets": []},
    {"policy_id": "POL-WARRANTY-ELEC", "type": "warranty", "title": "24-month warranty on electronics", "days": 730,
     "fee": None, "text": "Electronics are covered for 24 months.", "scope": "category",
     "targets": [("Category", "Electronics")]},
    {"policy_id": "POL-CANCEL-STD", "type": "cancellation", "title": "Cancelling an order", "days": None,
     "fee": 9.95, "text": "Cancel free of charge until the order ships; a 9.95 USD fee applies to refused "
                          "deliveries.", "scope": "store", "targets": []},
    {"policy_id": "POL-CANCEL-FURN", "type": "cancellation", "title": "Cancelling made-to-order furniture",
     "days": 2, "fee": 50.0, "text": "Furniture can be cancelled free within 48 hours; after that 50.00 USD.",
     "scope": "category", "targets": [("Category", "Furniture")]},
]

PROMOTIONS = [
    {"code": "AUDIO20", "description": "20% off all headphones.", "discount_percent": 20, "starts": "2026-03-05",
     "ends": "2026-04-04", "applies_to": "category:Headphones", "targets": [("Category", "Headphones")]},
    {"code": "NORDIC15", "description": "15% off Nordic Audio.", "discount_percent": 15, "starts": "2026-03-01",
     "ends": "2026-03-31", "applies_to": "brand:Nordic Audio", "targets": [("Brand", "Nordic Audio")]},
    {"code": "OLD10", "description": "Expired deal.", "discount_percent": 10, "starts": "2026-01-01",
     "ends": "2026-02-01", "applies_to": "category:Headphones", "targets": [("Category", "Headphones")]},
    {"code": "FUTURE30", "description": "Future sale.", "discount_percent": 30, "starts": "2026-05-01",
     "ends": "2026-05-04", "applies_to": "", "targets": []},
    {"code": "WELCOME10", "description": "10% off your first order.", "discount_percent": 10,
     "starts": "2025-01-01", "ends": "2027-01-01", "applies_to": "", "targets": []},
]

FAQS = [
    ("account", "How do I create an account?", "Choose Sign in, then Create account, and confirm the email we send."),
    ("password", "I forgot my password. How do I reset it?",
     "Choose Sign in > Forgot password and open the link we email you; it is valid for 60 minutes."),
    ("newsletter", "How do I unsubscribe from the newsletter?",
     "Use the Unsubscribe link at the bottom of any newsletter."),
    ("invoices", "Where can I find my invoice?", "Open the order in your account and choose Download invoice."),
    ("payment", "My payment was declined. What can I do?",
     "Check the card details and approve the payment in your banking app, or choose another method."),
    ("contact", "How can I reach customer service?", "Call +1 555-0100 on weekdays, 8 am to 8 pm UTC."),
]

CUSTOMERS = [("C00001", "Emma Smith"), ("C00002", "Liam Brown"), ("C00003", "Mia Chen")]


def _o(order_id, customer, status, placed, items, *, shipped=None, delivered=None, eta=None, carrier=None,
       tracking=None, total=None):
    return {"order_id": order_id, "customer_id": customer, "status": status, "placed_at": placed,
            "shipped_at": shipped, "delivered_at": delivered, "eta": eta, "carrier": carrier,
            "tracking_number": tracking, "shipping_method": "Standard", "payment_method": "Card",
            "ship_to": "1 Old Road, Portland 97201", "total": total or 0.0, "currency": "USD", "items": items}


ORDERS = [
    _o("10001", "C00001", "delivered", "2026-03-01T09:00:00Z", [("NA-HP-000001", 1, 249.99), ("SH-HC-000008", 1, 29.99)],
       shipped="2026-03-02T09:00:00Z", delivered="2026-03-05T15:00:00Z", total=279.98),
    _o("10002", "C00001", "shipped", "2026-03-12T09:00:00Z", [("BO-HP-000005", 1, 329.00)],
       shipped="2026-03-13T10:00:00Z", eta="2026-03-17", carrier="SwiftPost", tracking="SP123456789", total=329.00),
    _o("10003", "C00001", "placed", "2026-03-14T18:00:00Z", [("SN-HP-000007", 2, 129.99)], total=259.98),
    _o("10004", "C00001", "paid", "2026-03-10T08:00:00Z", [("OA-FU-000009", 1, 1299.00)], total=1299.00),
    _o("10005", "C00002", "delivered", "2026-03-01T08:00:00Z", [("NA-HP-000004", 1, 349.99)],
       shipped="2026-03-02T08:00:00Z", delivered="2026-03-04T08:00:00Z", total=349.99),
    _o("10006", "C00001", "delivered", "2025-11-01T08:00:00Z", [("LU-PH-000010", 1, 699.00)],
       shipped="2025-11-02T08:00:00Z", delivered="2025-11-05T08:00:00Z", total=699.00),
    _o("10007", "C00003", "delivered", "2026-02-20T08:00:00Z", [("NA-HP-000001", 1, 249.99), ("SH-HC-000008", 1, 29.99)],
       shipped="2026-02-21T08:00:00Z", delivered="2026-02-24T08:00:00Z", total=279.98),
    _o("10008", "C00003", "delivered", "2026-02-25T08:00:00Z", [("NA-HP-000002", 1, 249.99), ("SH-HC-000008", 1, 29.99)],
       shipped="2026-02-26T08:00:00Z", delivered="2026-02-28T08:00:00Z", total=279.98),
]

_W = {
    "categories": Query("test.shop.categories", """
        UNWIND $rows AS r MERGE (c:Category {name: r.name}) SET c.description = r.name
        WITH c, r WHERE r.parent IS NOT NULL
        MERGE (p:Category {name: r.parent}) MERGE (c)-[:SUBCATEGORY_OF]->(p)""", read_only=False),
    "brands": Query("test.shop.brands", "UNWIND $rows AS r MERGE (:Brand {name: r})", read_only=False),
    "products": Query("test.shop.products", """
        UNWIND $rows AS r
        MERGE (p:Product {sku: r.sku})
        SET p.name = r.name, p.price = r.price, p.currency = r.currency, p.stock = r.stock,
            p.attributes = r.attributes, p.attr_values = r.attr_values, p.status = r.status, p.rating = r.rating,
            p.warranty_months = r.warranty_months, p.description = r.description
        WITH p, r MATCH (b:Brand {name: r.brand}), (c:Category {name: r.category})
        MERGE (p)-[:MADE_BY]->(b) MERGE (p)-[:IN_CATEGORY]->(c)""", read_only=False),
    "policies": Query("test.shop.policies", """
        UNWIND $rows AS r
        MERGE (p:Policy {policy_id: r.policy_id})
        SET p.type = r.type, p.title = r.title, p.text = r.text, p.days = r.days, p.fee = r.fee, p.scope = r.scope""",
                      read_only=False),
    "promotions": Query("test.shop.promotions", """
        UNWIND $rows AS r
        MERGE (p:Promotion {code: r.code})
        SET p.description = r.description, p.discount_percent = r.discount_percent, p.starts = r.starts,
            p.ends = r.ends, p.applies_to = r.applies_to""", read_only=False),
    "applies": Query("test.shop.applies", """
        UNWIND $rows AS r
        MATCH (s:Policy {policy_id: r.source})
        MATCH (t) WHERE r.label IN labels(t) AND (t.name = r.target OR t.sku = r.target)
        MERGE (s)-[:APPLIES_TO]->(t)""", read_only=False),
    "applies_promo": Query("test.shop.applies_promo", """
        UNWIND $rows AS r
        MATCH (s:Promotion {code: r.source})
        MATCH (t) WHERE r.label IN labels(t) AND (t.name = r.target OR t.sku = r.target)
        MERGE (s)-[:APPLIES_TO]->(t)""", read_only=False),
    "faqs": Query("test.shop.faqs", """
        UNWIND $rows AS r MERGE (f:FAQ {faq_id: r.faq_id})
        SET f.question = r.question, f.answer = r.answer, f.topic = r.topic""", read_only=False),
    "customers": Query("test.shop.customers", """
        UNWIND $rows AS r MERGE (c:Customer {customer_id: r.customer_id}) SET c.name = r.name""", read_only=False),
    "orders": Query("test.shop.orders", """
        UNWIND $rows AS r
        MATCH (c:Customer {customer_id: r.customer_id})
        MERGE (o:Order {order_id: r.order_id})
        SET o.status = r.status, o.placed_at = r.placed_at, o.shipped_at = r.shipped_at,
            o.delivered_at = r.delivered_at, o.eta = r.eta, o.carrier = r.carrier,
            o.tracking_number = r.tracking_number, o.shipping_method = r.shipping_method,
            o.payment_method = r.payment_method, o.ship_to = r.ship_to, o.total = r.total, o.currency = r.currency
        MERGE (c)-[:PLACED]->(o)""", read_only=False),
    "items": Query("test.shop.items", """
        UNWIND $rows AS r
        MATCH (o:Order {order_id: r.order_id}), (p:Product {sku: r.sku})
        MERGE (o)-[ci:CONTAINS]->(p) SET ci.quantity = r.quantity, ci.unit_price = r.unit_price, ci.discount = 0.0""",
                   read_only=False),
    "shipping": Query("test.shop.shipping", """
        UNWIND $rows AS r MERGE (m:ShippingMethod {name: r.name})
        SET m.min_days = r.min_days, m.max_days = r.max_days, m.cost = r.cost, m.free_over = r.free_over,
            m.regions = r.regions""", read_only=False),
    "payment": Query("test.shop.payment", """
        UNWIND $rows AS r MERGE (m:PaymentMethod {name: r.name}) SET m.description = r.description""",
                     read_only=False),
    "meta": Query("test.shop.meta", "MERGE (m:Meta {key: 'catalog'}) SET m.version = $version", read_only=False),
    "order_status": Query("test.shop.order_status",
                          "MATCH (o:Order {order_id: $order_id}) SET o.status = $status RETURN o.order_id AS id",
                          read_only=False),
    "requests": Query("test.shop.requests", """
        MATCH (:Customer {customer_id: $customer_id})-[:REQUESTED]->(r:Request)-[:CONCERNS]->(o:Order)
        RETURN r.request_id AS request_id, r.kind AS kind, r.status AS status, r.reason AS reason,
               r.created_by AS created_by, r.created_at AS created_at, o.order_id AS order_id, o.status AS order_status,
               o.ship_to AS ship_to ORDER BY r.created_at""", read_only=True),
    "order": Query("test.shop.order", "MATCH (o:Order {order_id: $order_id}) RETURN properties(o) AS o"),
}


def build_shop(store) -> None:
    ensure_schema(store)
    store.run(_W["categories"], {"rows": CATEGORIES})
    store.run(_W["brands"], {"rows": BRANDS})
    store.run(_W["products"], {"rows": PRODUCTS})
    store.run(_W["policies"], {"rows": [{k: v for k, v in p.items() if k != "targets"} for p in POLICIES]})
    store.run(_W["applies"], {"rows": [{"source": p["policy_id"], "label": lbl,
                                        "target": t} for p in POLICIES for lbl, t in p["targets"]]})
    store.run(_W["promotions"], {"rows": [{k: v for k, v in p.items() if k != "targets"} for p in PROMOTIONS]})
    store.run(_W["applies_promo"], {"rows": [{"source": p["code"], "label": lbl, "target": t}
                                             for p in PROMOTIONS for lbl, t in p["targets"]]})
    store.run(_W["faqs"], {"rows": [{"faq_id": f"faq{i}", "topic": t, "question": q, "answer": a}
                                    for i, (t, q, a) in enumerate(FAQS)]})
    store.run(_W["customers"], {"rows": [{"customer_id": c, "name": n} for c, n in CUSTOMERS]})
    store.run(_W["orders"], {"rows": [{k: v for k, v in o.items() if k != "items"} for o in ORDERS]})
    store.run(_W["items"], {"rows": [{"order_id": o["order_id"], "sku": s, "quantity": q, "unit_price": up}
                                     for o in ORDERS for s, q, up in o["items"]]})
    store.run(_W["shipping"], {"rows": [
        {"name": "Standard", "min_days": 3, "max_days": 5, "cost": 4.99, "free_over": 50.0, "regions": ["US", "EU"]},
        {"name": "Express", "min_days": 1, "max_days": 2, "cost": 12.99, "free_over": 150.0, "regions": ["US"]}]})
    store.run(_W["payment"], {"rows": [{"name": "Card", "description": "Visa and Mastercard."},
                                       {"name": "PayPal", "description": "Your PayPal balance."}]})
    store.run(_W["meta"], {"version": 1})


def requests_of(store, customer_id: str) -> list[dict]:
    return store.run(_W["requests"], {"customer_id": customer_id})


def order_props(store, order_id: str) -> dict:
    rows = store.run(_W["order"], {"order_id": order_id})
    return rows[0]["o"] if rows else {}


def set_order_status(store, order_id: str, status: str) -> None:
    store.run(_W["order_status"], {"order_id": order_id, "status": status})


# -- understanding fakes ---------------------------------------------------------------------------
def ent(message: str, text: str, type_: str, node_id: str | None = None, *,
        candidates: list[tuple[str, str, str]] | None = None) -> Entity:
    """An entity of `message` (offsets computed), linked to `node_id` or ambiguous among `candidates`."""
    start = message.lower().find(text.lower())
    assert start >= 0, f"{text!r} not in {message!r}"
    cands = [Candidate(node_id=n, label=lbl, name=name, score=0.8) for n, lbl, name in (candidates or [])]
    return Entity(type=type_, text=message[start:start + len(text)], start=start, end=start + len(text),
                  node_id=node_id, score=0.95 if node_id else None, candidates=cands, ambiguous=bool(cands))


class ScriptedUnderstander:
    """The understanding collaborator, faked: each test turn says what the model understood."""

    threshold = 0.5  # the out-of-scope threshold the engine reads from its understander

    def __init__(self) -> None:
        self.script: dict[str, Understanding] = {}

    def expect(self, text: str, intent: str, confidence: float = 0.95, entities: list[Entity] | None = None) -> None:
        self.script[text] = Understanding(text=text, intent=IntentScore(name=intent, confidence=confidence),
                                          entities=list(entities or []))

    def understand(self, text: str) -> Understanding:
        return self.script[text]


AURORA_CANDIDATES = [("NA-HP-000001", "Product", PRODUCTS[0]["name"]),
                     ("NA-HP-000002", "Product", PRODUCTS[1]["name"]),
                     ("NA-HP-000003", "Product", PRODUCTS[2]["name"])]


class Chat:
    """One conversation: `chat.say(text, intent, entities...)` returns the `TurnResult`."""

    def __init__(self, engine: Engine, understander: ScriptedUnderstander, customer_id: str | None = None) -> None:
        self.engine, self.nlu, self.customer_id = engine, understander, customer_id
        self.session_id: str | None = None
        self.results: list[TurnResult] = []

    def say(self, text: str, intent: str, *entities: Entity | tuple, confidence: float = 0.95) -> TurnResult:
        ents = [e if isinstance(e, Entity) else ent(text, *e) for e in entities]
        self.nlu.expect(text, intent, confidence, ents)
        res = self.engine.handle(self.session_id, text, self.customer_id)
        self.session_id = res.session_id
        self.results.append(res)
        return res


def norm_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# -- fixtures (imported by the dialogue test modules) -----------------------------------------------
@pytest.fixture(scope="module")
def understander():
    """The committed understanding model (skips where none is trained)."""
    from nlu.model import CONFIG_FILE

    settings = Settings(_env_file=None)
    if not (settings.nlu_model_dir / CONFIG_FILE).is_file():
        pytest.skip(f"no trained understanding model in {settings.nlu_model_dir}")
    from nlu.understand import Understander

    return Understander.load(settings)


@pytest.fixture(scope="module")
def encoder():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(Settings(_env_file=None).encoder_path, device="cpu")


@pytest.fixture
def shop(falkordb_server):
    settings = Settings(_env_file=None, graph_url="falkordb://embedded", data_dir=falkordb_server.data_dir,
                        graph_name=f"dlg_{uuid.uuid4().hex[:10]}", falkordb_appendfsync="always")
    store = FalkorDBStore.from_settings(settings)
    build_shop(store)
    yield settings, store
    try:
        store.redis.execute_command("GRAPH.DELETE", settings.graph_name)
    except Exception:  # noqa: BLE001 - best effort clean-up
        pass
    store.close()


def make_engine(settings: Settings, store, encoder, *, prefix: str | None = None, new_id=None,
                verbalizer=None, clock=None, **engine_kw) -> tuple[Engine, ScriptedUnderstander]:
    """An engine on the test shop; `clock` (default: pinned to NOW) is the engine's and the
    retriever's, so a test can move time forward for both (expiry, hand-off timeouts)."""
    clock = clock or (lambda: NOW)
    nlu = ScriptedUnderstander()
    sessions = SessionStore(lambda: store.redis, ttl_s=settings.session_ttl_s,
                            prefix=prefix or f"test:{settings.graph_name}:", new_id=new_id)
    # the composition root with fakes swapped in: scripted understanding, no entity linker; the
    # engine's own settings (pending_ttl_s, handoff_timeout_s) through the settings it is built from
    app = bootstrap.build(settings.model_copy(update=engine_kw), store=store, sessions=sessions, understander=nlu,
                          linker=None, encoder_model=encoder, verbalizer=verbalizer or TemplateVerbalizer(),
                          examples=None, threshold=0.5, clock=clock)
    return app.engine.get(), nlu


@pytest.fixture
def engine_factory(shop, encoder):
    settings, store = shop

    def factory(**kw):
        return make_engine(settings, store, encoder, **kw)

    return factory


@pytest.fixture
def chat_factory(engine_factory):
    engine, nlu = engine_factory()

    def factory(customer_id: str | None = None) -> Chat:
        return Chat(engine, nlu, customer_id)

    return factory


# -- a test of this module's own shop -----------------------------------------------------------
def test_every_dialogue_query_is_registered_and_the_shop_builds(shop):
    _, store = shop
    names = set(all_queries())
    for prefix in ("products.", "orders.", "policies.", "procedures."):
        assert any(n.startswith(prefix) for n in names), prefix
    writes = {n for n, q in all_queries().items() if not q.read_only}
    assert {"orders.cancel", "orders.change_address", "orders.request_return"} <= writes
    assert all(not all_queries()[n].idempotent for n in ("orders.cancel", "orders.change_address",
                                                         "orders.request_return"))
    assert order_props(store, "10002")["carrier"] == "SwiftPost"
