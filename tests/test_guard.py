"""Grounding guard and safety filter: pure functions of text and facts (no model, no graph)."""

from __future__ import annotations

import pytest

from common.settings import Settings
from qa.facts import make_fact
from qa.guard import GroundingGuard, facts_json_lines
from qa.safety import SafetyFilter
from qa.types import Retrieval

CATALOGUE = ["Aurora X2", "Aurora X2 Pro", "Nimbus Pro", "Aurora", "Nimbus", "Apple", "Headphones"]


@pytest.fixture
def guard() -> GroundingGuard:
    return GroundingGuard(CATALOGUE, default_currencies=["USD"])


@pytest.fixture
def product() -> Retrieval:
    return Retrieval(
        intent="product_price",
        status="ok",
        query_name="products.by_sku",
        facts=[
            make_fact(
                kind="product",
                data={
                    "sku": "AX2-128",
                    "name": "Aurora X2",
                    "brand": "Aurora",
                    "category": "Headphones",
                    "price": 1299.0,
                    "currency": "USD",
                    "stock": 42,
                    "rating": 4.5,
                    "attributes": {"capacity": "128 GB", "colour": "black"},
                },
            )
        ],
    )


@pytest.fixture
def order() -> Retrieval:
    return Retrieval(
        intent="track_order",
        status="ok",
        facts=[
            make_fact(
                kind="order",
                data={
                    "order_id": "10452",
                    "status": "shipped",
                    "placed_at": "2026-02-27T09:12:00Z",
                    "eta": "2026-03-03",
                    "carrier": "DHL",
                    "tracking_number": "1Z999AA10123456784",
                    "total": "18.00",
                    "currency": "USD",
                },
            )
        ],
    )


@pytest.fixture
def policy() -> Retrieval:
    return Retrieval(
        intent="check_refund_policy",
        status="procedure",
        facts=[
            make_fact(
                kind="policy",
                data={
                    "type": "return",
                    "title": "Returns",
                    "days": 30,
                    "fee": 4.95,
                    "currency": "USD",
                    "text": "Items can be returned within 30 days. A restocking fee of 4.95 USD applies; "
                    "discounts of 15% are not refunded.",
                },
            )
        ],
    )


# -- rejected ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("The Aurora X2 costs $1,199.", "money amount '$1,199'"),
        ("The Aurora X2 is 1299 EUR.", "money amount '1299 EUR'"),
        ("The Aurora X2 costs 42 USD.", "money amount '42 USD'"),  # 42 is the stock, not a price
        ("The Nimbus Pro costs $1,299.", "name 'Nimbus Pro' is in the catalogue"),
        ("The Aurora X2 Pro costs 1,299.00 USD.", "name 'Aurora X2 Pro'"),
        ("Aurora X2 costs $1,299 and has 64GB.", "'64GB'"),
        ("Aurora X2 (SKU AX2-256) costs $1,299.", "SKU/model number 'AX2-256'"),
        ("It is 20% off this week.", "percentage '20%'"),
        ("It was designed in Sweden.", "name 'Sweden'"),
        ("We have 43 in stock.", "number '43'"),
        ("We have forty in stock.", "number 'forty'"),
    ],
)
def test_rejects_unsupported_product_claims(guard, product, text, needle):
    ok, reasons = guard.check(text, product)
    assert not ok
    assert any(needle in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Your order 10452 will arrive on March 5.", "date 'March 5'"),
        ("Your order 10452 will arrive on 5 March 2026.", "date '5 March 2026'"),
        ("Your order 10452 will arrive on 2026-03-04.", "date '2026-03-04'"),
        ("Your order 10452 arrives March 3, 2025.", "date 'March 3, 2025'"),
        ("Your order 10453 will arrive on March 3.", "order id '10453'"),
        ("Order #10542 is on its way.", "order id '10542'"),
        ("Tracking number 1Z999AA10123456785.", "tracking number '1Z999AA10123456785'"),
        ("Your order will arrive tomorrow.", "relative date 'tomorrow'"),
        ("It arrives on Wednesday.", "weekday 'Wednesday'"),
        ("I have cancelled your order 10452.", "claims an action ('I have cancelled')"),
        ("Your refund has been issued.", "claims an action ('has been issued')"),
        ("I changed your address for order 10452.", "claims an action ('I changed')"),
        ("I'll cancel order 10452 for you.", "promises an action ('I'll cancel')"),
        ("Your order total was $19.00.", "money amount '$19.00'"),
        ("Contact us at help@example.com.", "e-mail address 'help@example.com'"),
        ("DHA (DHL) is the carrier for order 10452.", "name 'DHA'"),  # an acronym, even first in a sentence
        ("SpaceX delivers order 10452.", "name 'SpaceX'"),
    ],
)
def test_rejects_unsupported_order_claims(guard, order, text, needle):
    ok, reasons = guard.check(text, order)
    assert not ok
    assert any(needle in r for r in reasons), reasons


# -- accepted ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "The Aurora X2 costs $1,299.",
        "The Aurora X2 costs 1299.00 USD.",
        "Aurora X2 is USD 1,299.00 and we have 42 in stock.",
        "The Aurora X2 (SKU ax2-128) costs 1,299 dollars, is rated 4.5 and has 128GB.",
        "Yes! The Aurora headphones are available in black.",
        "Hi! The Aurora X2 is in stock. How can I help you today?",
        "An apple a day: the Aurora X2 costs $1299.",  # a lower-case common word is not the brand
    ],
)
def test_accepts_rephrased_product_facts(guard, product, text):
    assert guard.check(text, product) == (True, [])


@pytest.mark.parametrize(
    "text",
    [
        "Your order 10452 shipped with DHL and should arrive on March 3rd, 2026.",
        "Order #10452 arrives on Tuesday, 3 March.",
        "Order 10452 will arrive on 03/03/2026; tracking number 1Z999AA10123456784.",
        "It was placed on Feb 27 and arrives on 2026-03-03.",
        "The order total was $18 (18.00 USD).",
        "Your order is expected on the 3rd of March.",
    ],
)
def test_accepts_rephrased_order_facts(guard, order, text):
    assert guard.check(text, order) == (True, [])


def test_accepts_policy_numbers_from_fact_text(guard, policy):
    text = "You can return items within thirty days; a 4.95 USD restocking fee applies and 15 percent discounts are not refunded."
    ok, reasons = guard.check(text, policy)
    # "thirty" and "30" are the same number; the action words are part of the policy's text.
    assert ok, reasons


def test_draft_supports_derived_values(guard, order):
    """Values the template writer derived from the facts (a formatted total) count as facts."""
    text = "Your two items total 36.00 USD."
    assert not guard.check(text, order).ok
    assert guard.check(text, order, draft="2 items, 36.00 USD in total.").ok


def test_actions_allowed_only_when_done(guard, order):
    done = order.model_copy(update={"intent": "cancel_order", "status": "action_done"})
    assert guard.check("I have cancelled your order 10452.", done).ok
    # ...but not an action other than the one done
    ok, reasons = guard.check("I have changed your address.", done)
    assert not ok and "claims an action" in reasons[0]
    # a state the facts show is a fact, not a claim
    cancelled = order.model_copy(deep=True)
    cancelled.facts[0].status = "cancelled"
    assert guard.check("Order 10452 was cancelled.", cancelled).ok
    assert guard.check("I have not cancelled your order 10452.", order).ok
    proposed = order.model_copy(update={"intent": "cancel_order", "status": "action_proposed"})
    assert guard.check("Shall I cancel order 10452? I will cancel it once you confirm.", proposed).ok
    assert not guard.check("Your order 10452 has been cancelled.", proposed).ok


def test_catalogue_can_be_replaced(product):
    g = GroundingGuard([])
    assert (
        g.check("The Aurora X2 costs $1,299. Try the Zephyr too.", product).ok is False
    )  # 'Zephyr': unknown name
    assert g.check("The Aurora X2 costs $1,299. Try the zephyr too.", product).ok  # not a name, not catalogue
    g.set_catalogue(["Zephyr", "Aurora X2"])
    ok, reasons = g.check("The Aurora X2 costs $1,299. Try the Zephyr too.", product)
    assert not ok and reasons == ["name 'Zephyr' is in the catalogue but not in the facts"]


def test_a_name_inside_a_name_of_the_facts_is_supported():
    full = Retrieval(intent="product_price", status="ok", facts=[make_fact(kind="product", data={
        "sku": "NA-AX2-BLK", "name": "Nordic Audio Aurora X2 Wireless Headphones, Black", "price": 199.0,
        "currency": "USD"})])
    g = GroundingGuard(["Nordic Audio", "Aurora X2", "Aurora X2 Pro", "Nordic Audio Aurora X2 Wireless Headphones, Black"],
                       default_currencies=["USD"])
    assert g.check("The Aurora X2 by Nordic Audio costs $199.", full).ok
    ok, reasons = g.check("The Aurora X2 Pro costs $199.", full)
    assert not ok and reasons == ["name 'Aurora X2 Pro' is in the catalogue but not in the facts"]


def test_catalogue_follows_its_source(product):
    """`follow`: the names are reloaded when the source's version changes, and only then; a source
    that fails keeps the last names."""
    state = {"version": 1, "names": ["Aurora X2"], "loads": 0, "fail": False}

    def version():
        if state["fail"]:
            raise ConnectionError("graph away")
        return state["version"]

    def names():
        state["loads"] += 1
        return list(state["names"])

    g = GroundingGuard([])
    g.follow(version, names)
    reply = "The Aurora X2 costs $1,299. Try the Zephyr too."
    assert not g.check(reply, product).ok  # 'Zephyr' is an unknown capitalised word
    assert g.check("The Aurora X2 costs $1,299.", product).ok
    assert state["loads"] == 1
    state["names"] = ["Aurora X2", "Zephyr"]  # imported, same version: not seen yet
    g.check("The Aurora X2 costs $1,299.", product)
    assert state["loads"] == 1
    state["version"] = 2
    ok, reasons = g.check(reply, product)
    assert state["loads"] == 2 and reasons == ["name 'Zephyr' is in the catalogue but not in the facts"]
    state["fail"] = True
    ok, reasons = g.check(reply, product)
    assert reasons == ["name 'Zephyr' is in the catalogue but not in the facts"]


def test_facts_json_lines_is_compact(product):
    line = facts_json_lines(product)
    assert line.startswith('{"kind":"product","sku":"AX2-128"')
    assert "\n" not in line and ": " not in line


# -- safety --------------------------------------------------------------------------------------
@pytest.fixture
def personal() -> Retrieval:
    return Retrieval(
        intent="track_order",
        status="ok",
        facts=[
            make_fact(
                kind="order",
                data={
                    "order_id": "10452",
                    "customer_id": "C1",
                    "ship_to": "12 Baker Street, London NW1",
                    "placed_at": "2026-02-27",
                    "total": "1299.99",
                },
            ),
            make_fact(
                kind="customer",
                data={"customer_id": "C1", "email": "ann@example.com", "phone": "+44 20 7946 0958"},
            ),
            make_fact(kind="supplier", data={"name": "Acme", "phone": "+1 555 010 2030"}),
        ],
    )


def test_safety_keeps_the_customers_own_data(personal):
    text = "Order 10452 ships to 12 Baker St, London. We will email ann@example.com or call +44 20 7946 0958."
    result = SafetyFilter().apply(text, personal, customer_id="C1")
    assert result.text == text and not result.changed


def test_safety_masks_data_of_others(personal):
    text = "Order 10452 ships to 12 Baker St, London. We will email ann@example.com or call +44 20 7946 0958."
    result = SafetyFilter().apply(text, personal, customer_id="C2")
    assert result.text == (
        "Order 10452 ships to [address removed], London. We will email [email removed] or call [phone removed]."
    )
    assert result.redactions == ["address", "email", "phone"]
    anonymous = SafetyFilter().apply(text, personal, customer_id=None)
    assert anonymous.text == result.text


def test_safety_masks_invented_personal_data(personal):
    text = (
        "Bob lives at 221B Baker Street, mail bob@mail.com, phone (555) 123-4567; or call me on 07700900123."
    )
    result = SafetyFilter().apply(text, personal, customer_id="C1")
    assert result.text == (
        "Bob lives at [address removed], mail [email removed], phone [phone removed]; or call me on [phone removed]."
    )
    assert SafetyFilter().apply("Visit Hauptstraße 5 or 10 Rue de Rivoli today.", None).text == (
        "Visit [address removed] or [address removed] today."
    )


def test_safety_leaves_public_and_non_personal_numbers(personal):
    text = (
        "Call Acme at 555-010-2030. Order 10452 was placed on 2026-02-27, total 1,299.99 USD, "
        "tracking 9400100000000000000000, order number 1234567890."
    )
    assert SafetyFilter().apply(text, personal, customer_id=None).text == text


def test_personal_fact_without_owner_is_not_trusted():
    r = Retrieval(
        intent="track_order",
        status="ok",
        facts=[make_fact(kind="order", data={"order_id": "1", "ship_to": "12 Baker Street"})],
    )
    assert (
        SafetyFilter().apply("It goes to 12 Baker Street.", r, customer_id="C1").text
        == "It goes to [address removed]."
    )


def test_blocked_words_are_starred_whole_word_and_case_insensitive():
    f = SafetyFilter.from_settings(Settings(_env_file=None, blocked_words="darn, bad phrase,,class"))
    result = f.apply("Darn, this is a BAD PHRASE in a classic class.")
    assert result.text == "****, this is a ********** in a classic *****."
    assert result.blocked == ["bad phrase", "class", "darn"]
    assert SafetyFilter().apply("Darn.").text == "Darn."
