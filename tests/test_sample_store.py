"""The sample store must be a faithful, reproducible stand-in for a shop's own import files.

These tests read the generated files the way an importer would (csv / json, no graph), and check
the contract of DESIGN section 3 with column lists written out here rather than imported, so a
drift in the generator's own tables fails them.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from import_scripts.sample_store import generate, generate_sample_command

TODAY = dt.date(2025, 6, 1)
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)

DESIGN_COLUMNS = {
    "categories.csv": ["name", "parent", "description"],
    "brands.csv": ["name", "country"],
    "suppliers.csv": ["supplier_id", "name", "country", "phone"],
    "products.csv": ["sku", "name", "brand", "category", "supplier_id", "price", "currency", "stock", "description",
                     "warranty_months", "rating", "status", "attributes"],
    "customers.csv": ["customer_id", "name", "email", "phone", "city", "country", "tier"],
    "orders.csv": ["order_id", "customer_id", "status", "placed_at", "shipped_at", "delivered_at", "eta", "carrier",
                   "tracking_number", "shipping_method", "payment_method", "ship_to", "total", "currency"],
    "order_items.csv": ["order_id", "sku", "quantity", "unit_price", "discount"],
    "shipping_methods.csv": ["name", "min_days", "max_days", "cost", "free_over", "regions"],
    "payment_methods.csv": ["name", "description"],
    "promotions.csv": ["code", "description", "discount_percent", "starts", "ends", "applies_to"],
    "policies.jsonl": ["policy_id", "type", "title", "text", "days", "fee", "applies_to"],
    "faqs.jsonl": ["question", "answer", "topic"],
}
POLICY_TYPES = {"return", "refund", "warranty", "shipping", "payment", "cancellation", "account", "privacy", "other"}
STATUSES = {"placed", "paid", "shipped", "delivered", "cancelled", "returned"}
MONEY = re.compile(r"^\d+\.\d{2}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def read(directory: Path, name: str) -> list[dict]:
    path = directory / name
    if name.endswith(".jsonl"):
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def ts(value: str) -> dt.datetime:
    assert TIMESTAMP.match(value), value
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate(out, today=TODAY)


@pytest.fixture(scope="module")
def data(store) -> dict[str, list[dict]]:
    out, _ = store
    return {name: read(out, name) for name in DESIGN_COLUMNS}


def test_same_arguments_give_byte_identical_files(store, tmp_path):
    out, counts = store
    again = generate(tmp_path, today=TODAY)
    assert again == counts
    for name in DESIGN_COLUMNS:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    other = generate(tmp_path / "other", products=50, customers=5, orders=20, seed=8, today=TODAY)
    first = generate(tmp_path / "first", products=50, customers=5, orders=20, seed=7, today=TODAY)
    assert {k: v for k, v in other.items() if k != "order_items.csv"} == \
        {k: v for k, v in first.items() if k != "order_items.csv"}
    assert (tmp_path / "other" / "products.csv").read_bytes() != (tmp_path / "first" / "products.csv").read_bytes()


def test_files_have_the_design_columns_and_the_reported_row_counts(store, data):
    out, counts = store
    assert set(counts) == set(DESIGN_COLUMNS)
    assert not list(out.glob("*.part"))
    for name, columns in DESIGN_COLUMNS.items():
        if name.endswith(".csv"):
            with (out / name).open(encoding="utf-8", newline="") as fh:
                assert next(csv.reader(fh)) == columns, name
        else:
            assert all(list(row) == columns for row in data[name]), name
        assert counts[name] == len(data[name]), name
    assert (counts["products.csv"], counts["customers.csv"], counts["orders.csv"]) == (1000, 300, 3000)
    assert len(data["brands.csv"]) == 40
    assert 12 <= len(data["suppliers.csv"]) <= 20
    assert 6 <= len(data["promotions.csv"]) <= 10
    assert len(data["faqs.jsonl"]) >= 35


def test_category_tree_has_two_levels_and_every_leaf_is_stocked(data):
    categories = {c["name"]: c["parent"] for c in data["categories.csv"]}
    assert len(categories) >= 12
    roots = {name for name, parent in categories.items() if not parent}
    leaves = set(categories) - roots
    assert len(roots) >= 3 and len(leaves) >= 12
    for name in leaves:
        assert categories[name] in roots, f"{name} -> {categories[name]} is not a root"
    used = Counter(p["category"] for p in data["products.csv"])
    assert set(used) == leaves  # products sit in subcategories, and every subcategory has some


def test_references_between_files_resolve(data):
    brands = {b["name"] for b in data["brands.csv"]}
    categories = {c["name"] for c in data["categories.csv"]}
    suppliers = {s["supplier_id"] for s in data["suppliers.csv"]}
    skus = [p["sku"] for p in data["products.csv"]]
    assert len(set(skus)) == len(skus)
    for p in data["products.csv"]:
        assert p["brand"] in brands and p["category"] in categories and p["supplier_id"] in suppliers, p["sku"]
    customers = {c["customer_id"] for c in data["customers.csv"]}
    methods = {m["name"] for m in data["shipping_methods.csv"]}
    payments = {m["name"] for m in data["payment_methods.csv"]}
    order_ids = [o["order_id"] for o in data["orders.csv"]]
    assert order_ids == [str(n) for n in range(10001, 10001 + len(order_ids))]
    for o in data["orders.csv"]:
        assert o["customer_id"] in customers and o["shipping_method"] in methods and o["payment_method"] in payments
    known_skus, known_orders = set(skus), set(order_ids)
    per_order = Counter()
    for item in data["order_items.csv"]:
        assert item["sku"] in known_skus and item["order_id"] in known_orders, item
        per_order[item["order_id"]] += 1
    assert set(per_order) == known_orders
    assert set(per_order.values()) <= {1, 2, 3, 4} and max(per_order.values()) >= 3


def test_products_look_like_a_real_catalog(data):
    products = data["products.csv"]
    assert all(MONEY.match(p["price"]) and Decimal(p["price"]) > 0 for p in products)
    assert Counter(p["currency"] for p in products).keys() == {"USD", "EUR"}
    status = Counter(p["status"] for p in products)
    assert set(status) == {"active", "discontinued"} and 0 < status["discontinued"] < 0.1 * len(products)
    assert 0 < sum(p["stock"] == "0" for p in products) < 0.3 * len(products)
    with_warranty = [p for p in products if p["warranty_months"]]
    assert 0 < len(with_warranty) < len(products) and all(int(p["warranty_months"]) > 0 for p in with_warranty)
    rated = [float(p["rating"]) for p in products if p["rating"]]
    assert rated and all(1.0 <= r <= 5.0 and re.match(r"^\d\.\d$", p) for r, p in
                         zip(rated, (p["rating"] for p in products if p["rating"]), strict=True))
    assert all(p["description"].endswith(".") and p["description"][0].isupper() for p in products)
    assert not [p["description"] for p in products if re.search(r"\b[Aa] [aeiou]", p["description"])]
    attributes = [json.loads(p["attributes"]) for p in products]
    assert all(isinstance(a, dict) and a.get("model_line") for a in attributes)
    keys = set().union(*attributes)
    assert {"colour", "size", "storage", "battery_life_hours", "material", "weight_g", "screen_size_in",
            "compatible_with"} <= keys


def test_model_lines_come_in_variants_and_model_numbers(data):
    lines = defaultdict(list)
    for p in data["products.csv"]:
        lines[(p["brand"], json.loads(p["attributes"])["model_line"])].append(p)
    aurora = lines[("Nordic Audio", "Aurora X2")]
    assert len(aurora) >= 3 and len({p["name"] for p in aurora}) == len(aurora)
    assert aurora[0]["sku"] == "NA-HP-000001" and aurora[0]["name"] == "Nordic Audio Aurora X2 Wireless Headphones, Black"
    assert sum(len(v) > 1 for v in lines.values()) > 0.4 * len(lines)
    assert len({p["name"] for p in data["products.csv"]}) == len(data["products.csv"])
    coded = [line for _, line in lines if re.fullmatch(r"[A-Z]{2,3}-\d{3,}[A-Z]*", line)]
    assert ("Nordic Audio", "NA-700X") in lines and len(coded) >= 10


def test_accessories_name_existing_model_lines(data):
    full_lines = {f"{p['brand']} {json.loads(p['attributes'])['model_line']}" for p in data["products.csv"]}
    accessories = [json.loads(p["attributes"]) for p in data["products.csv"]
                   if "compatible_with" in p["attributes"]]
    assert len(accessories) >= 50
    assert all(a["compatible_with"] in full_lines for a in accessories)


def test_orders_hold_co_purchases_of_devices_and_their_accessories(data):
    line_of = {}
    fits = {}
    for p in data["products.csv"]:
        attrs = json.loads(p["attributes"])
        line_of[p["sku"]] = f"{p['brand']} {attrs['model_line']}"
        if "compatible_with" in attrs:
            fits[p["sku"]] = attrs["compatible_with"]
    baskets = defaultdict(list)
    for item in data["order_items.csv"]:
        baskets[item["order_id"]].append(item["sku"])
    paired = sum(any(fits.get(a) == line_of[b] for a in skus for b in skus) for skus in baskets.values())
    assert paired >= 200


def test_every_status_occurs_with_dates_that_agree(data):
    orders = data["orders.csv"]
    assert Counter(o["status"] for o in orders).keys() == STATUSES
    previous = None
    for o in orders:
        placed = ts(o["placed_at"])
        assert NOW - dt.timedelta(days=366) <= placed < NOW
        assert previous is None or placed >= previous  # order ids rise with time
        previous = placed
        sent = o["status"] in ("shipped", "delivered", "returned")
        assert bool(o["carrier"]) == sent and bool(o["tracking_number"]) == sent, o
        assert bool(o["shipped_at"]) == sent, o
        assert bool(o["delivered_at"]) == (o["status"] in ("delivered", "returned")), o
        assert bool(o["eta"]) == (o["status"] == "shipped"), o
        if sent:
            assert placed < ts(o["shipped_at"]) < NOW
        if o["delivered_at"]:
            assert ts(o["shipped_at"]) < ts(o["delivered_at"]) < NOW
        if o["eta"]:
            eta = dt.date.fromisoformat(o["eta"])
            assert eta >= TODAY and eta >= ts(o["shipped_at"]).date()
        if o["status"] == "placed":
            assert NOW - placed < dt.timedelta(days=2)
    tracking = [o["tracking_number"] for o in orders if o["tracking_number"]]
    assert len(set(tracking)) == len(tracking)


def test_order_totals_are_the_discounted_item_sums(data):
    sums = defaultdict(Decimal)
    for item in data["order_items.csv"]:
        assert MONEY.match(item["unit_price"]) and int(item["quantity"]) >= 1
        discount = Decimal(item["discount"])
        assert 0 <= discount <= Decimal("0.3")
        sums[item["order_id"]] += int(item["quantity"]) * Decimal(item["unit_price"]) * (1 - discount)
    listed = {p["sku"]: (Decimal(p["price"]), p["currency"]) for p in data["products.csv"]}
    currency = {o["order_id"]: o["currency"] for o in data["orders.csv"]}
    same = [i for i in data["order_items.csv"] if listed[i["sku"]][1] == currency[i["order_id"]]]
    assert same and all(Decimal(i["unit_price"]) == listed[i["sku"]][0] for i in same)
    discounted = sum(Decimal(i["discount"]) > 0 for i in data["order_items.csv"])
    assert 0 < discounted < 0.3 * len(data["order_items.csv"])
    for o in data["orders.csv"]:
        assert MONEY.match(o["total"]) and o["currency"] in ("USD", "EUR")
        assert Decimal(o["total"]) == sums[o["order_id"]].quantize(Decimal("0.01"), ROUND_HALF_UP), o["order_id"]


def test_policies_cover_every_type_and_override_by_specificity(data):
    policies = data["policies.jsonl"]
    assert len({p["policy_id"] for p in policies}) == len(policies)
    store_wide = {p["type"] for p in policies if not p["applies_to"]}
    assert store_wide == POLICY_TYPES
    assert {p["type"] for p in policies} <= POLICY_TYPES
    by_target = defaultdict(dict)
    for p in policies:
        for target in (p["applies_to"] or "").split(";"):
            by_target[target][p["type"]] = p
    assert by_target[""]["return"]["days"] == 30 and by_target[""]["warranty"]["days"] == 365
    assert by_target[""]["cancellation"]["fee"] > 0
    assert by_target["category:Smartphones"]["return"]["days"] == 14
    # a subcategory and its parent disagree, so resolving has to walk up from the nearest
    parent = {c["name"]: c["parent"] for c in data["categories.csv"]}["Running Shoes"]
    assert by_target["category:Running Shoes"]["return"]["days"] != by_target[f"category:{parent}"]["return"]["days"]
    assert any(t.startswith("brand:") for t in by_target) and any(t.startswith("sku:") for t in by_target)
    assert any(";" in (p["applies_to"] or "") for p in policies)
    assert by_target["sku:NA-HP-000001"]["return"]["days"] == 60
    categories = {c["name"] for c in data["categories.csv"]}
    brands = {b["name"] for b in data["brands.csv"]}
    skus = {p["sku"] for p in data["products.csv"]}
    targets = {t for t in by_target if t} | {t for p in data["promotions.csv"] for t in p["applies_to"].split(";") if t}
    for target in targets:
        kind, _, name = target.partition(":")
        assert name in {"category": categories, "brand": brands, "sku": skus}[kind], target


def test_promotions_are_expired_active_and_upcoming(data):
    states = set()
    for p in data["promotions.csv"]:
        starts, ends = dt.date.fromisoformat(p["starts"]), dt.date.fromisoformat(p["ends"])
        assert starts <= ends and 0 < int(p["discount_percent"]) < 100
        states.add("expired" if ends < TODAY else "upcoming" if starts > TODAY else "active")
    assert states == {"expired", "active", "upcoming"}
    assert any(p["applies_to"] == "" for p in data["promotions.csv"])


def test_store_tables_are_consistent(data):
    for m in data["shipping_methods.csv"]:
        assert 0 < int(m["min_days"]) <= int(m["max_days"]) and MONEY.match(m["cost"]) and m["regions"]
        assert m["free_over"] == "" or MONEY.match(m["free_over"])
    assert len(data["payment_methods.csv"]) >= 5
    customers = data["customers.csv"]
    assert {c["tier"] for c in customers} == {"bronze", "silver", "gold"}
    assert len({c["email"] for c in customers}) == len(customers)
    assert all(re.fullmatch(r"[a-z0-9.]+@example\.(com|org|net)", c["email"]) for c in customers)
    faqs = data["faqs.jsonl"]
    assert len({f["question"] for f in faqs}) == len(faqs)
    assert all(len(f["answer"]) > 80 for f in faqs)
    assert {"account", "password", "registration", "invoices", "payment", "newsletter", "contact", "delivery",
            "returns"} <= {f["topic"] for f in faqs}


def test_scaling_and_small_runs(tmp_path):
    big = generate(tmp_path / "big", products=5000, customers=40, orders=200, today=TODAY)
    assert (big["products.csv"], big["customers.csv"], big["orders.csv"]) == (5000, 40, 200)
    skus = [p["sku"] for p in read(tmp_path / "big", "products.csv")]
    assert len(skus) == len(set(skus)) == 5000
    small = generate(tmp_path / "small", products=30, customers=3, orders=30, today=TODAY)
    assert small["products.csv"] == 30
    orders = read(tmp_path / "small", "orders.csv")
    assert {o["status"] for o in orders} == STATUSES
    known = {p["sku"] for p in read(tmp_path / "small", "products.csv")}
    assert all(i["sku"] in known for i in read(tmp_path / "small", "order_items.csv"))
    policy_targets = {p["applies_to"] for p in read(tmp_path / "small", "policies.jsonl")}
    assert "sku:NA-HP-000001" in policy_targets
    with pytest.raises(ValueError):
        generate(tmp_path / "bad", products=0, today=TODAY)


def test_command_writes_the_files_and_prints_a_line_per_file(tmp_path):
    result = CliRunner().invoke(generate_sample_command, ["--out", str(tmp_path / "cli"), "--products", "40",
                                                          "--customers", "5", "--orders", "25", "--seed", "3",
                                                          "--today", "2025-06-01"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == len(DESIGN_COLUMNS)
    assert any(line.endswith("products.csv: 40 rows") for line in lines)
    expected = generate(tmp_path / "api", products=40, customers=5, orders=25, seed=3, today=TODAY)
    assert expected["orders.csv"] == 25
    for name in DESIGN_COLUMNS:
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()
    bad = CliRunner().invoke(generate_sample_command, ["--out", str(tmp_path / "x"), "--today", "June"])
    assert bad.exit_code != 0
