"""The small readers behind the clarification policy and the policy answers, on their own: which
words of a shopper name a product word (typos, plurals, "e-book" / "ebook"), which countries a
message names and which a shipping region covers, what a cancellation policy's text says about a
shipped order, and when a return window counts from the ship date."""

from __future__ import annotations

from datetime import date

import pytest

from qa import actions
from qa.places import codes_of, places_in
from qa.text import covers, word_matches, words


@pytest.mark.parametrize(("said", "word", "same"), [
    ("ebook", "ebook", True), ("notebook", "notebooks", True), ("hardcovr", "hardcover", True),
    ("duall", "dual", True), ("charger", "chargers", True), ("pb", "hb", False), ("128", "256", False),
    ("red", "bed", False), ("kit", "kits", False),
    # a typo keeps the first letter: "drill" and "grill", "book" and "ebook" are different things
    ("drill", "grill", False), ("book", "ebook", False), ("chager", "charger", True),
])
def test_a_word_names_another_despite_a_typo_or_a_plural(said, word, same):
    assert word_matches(said, word) is same


def test_words_join_hyphenated_words_and_cover_a_name():
    assert words("Sapiens (E-book), Tie-in") == ["sapiens", "ebook", "tiein"]
    assert covers(words("the lumen notebook"), words("Lumen Pocket Notebooks"))
    assert not covers(words("the lumen notebook"), words("Lumen Gel Pen"))
    assert not covers(words("the"), words("The Hobbit"))  # filler alone names nothing


def test_places_a_message_names_and_the_countries_a_region_covers():
    assert places_in("can I get it delivered to Canada?") == ["CA"]
    assert places_in("what does shipping to the UK cost") == ["GB"]
    assert places_in("do you ship to us?") == []  # "us" is a pronoun; "US" is a country
    assert places_in("ship to the US or to mexico") == ["US", "MX"]
    assert codes_of("United Kingdom") == frozenset({"GB"}) and codes_of("DE") == frozenset({"DE"})
    eu = codes_of("EU")
    assert eu is not None and "FR" in eu and "CH" not in eu
    world = codes_of("Worldwide")
    assert world is not None and "JP" in world
    assert codes_of("Narnia") is None


@pytest.mark.parametrize(("text", "fee", "days", "after", "refused"), [
    # a shipped order can be cancelled, for the fee
    ("Free to cancel until we hand the parcel over. If the parcel has already shipped, cancelling is still "
     "possible but costs the fee.", 3.0, None, True, False),
    ("Orders can be cancelled at no cost before they leave the warehouse. After shipping a restocking fee "
     "applies to a cancellation.", 4.0, None, True, False),
    # a shipped order can no longer be cancelled: the fee is about something else
    ("You can cancel an order free of charge until it ships. A shipped order can no longer be cancelled: refuse "
     "the delivery instead. A handling fee is deducted from refused parcels.", 9.95, None, False, True),
    # a free window after placing, the fee after it (shipping does not matter)
    ("Made-to-order items can be cancelled free within 48 hours; after that a fee applies.", 50.0, 2, False, False),
])
def test_cancellation_terms_are_read_from_the_policy(text, fee, days, after, refused):
    terms = actions.cancel_terms({"title": "Cancelling", "text": text, "fee": fee, "days": days})
    assert terms is not None and terms.after_shipping is after and terms.not_after_shipping is refused
    assert terms.fee == fee and terms.free_days == (float(days) if days is not None else None)
    statuses = actions.cancellable_statuses([{"text": text, "fee": fee, "days": days}])
    assert ("shipped" in statuses) is after


def test_a_return_window_counts_from_the_ship_date_when_no_delivery_date_was_recorded():
    order = {"order_id": "1", "status": "delivered", "shipped_at": "2026-02-20T09:00:00Z", "delivered_at": None}
    items = [{"sku": "A", "name": "A"}, {"sku": "B", "name": "B"}]
    policies = {"A": {"policy_id": "P30", "title": "30 days", "days": 30}, "B": {"policy_id": "P0", "days": 0}}
    a, b = actions.return_windows(order, items, policies, date(2026, 3, 10))
    assert (a["deadline"], a["open"], a["counted_from"], a["since"]) == ("2026-03-22", True, "shipping", "2026-02-20")
    assert b["open"] is False  # a window of 0 days: no returns
    shipped = dict(order, status="shipped")
    assert actions.return_windows(shipped, items, policies, date(2026, 3, 10))[0]["deadline"] is None
