"""The linker's graph stage (nlu/linking/search.py): products found in a real graph by the words
of a mention the linker's index did not settle."""

from __future__ import annotations

from nlu.linking.search import NameSearch, product_attributes
from tests.test_dialogue_support import shop  # noqa: F401 - the test shop fixture

AURORA = {"NA-HP-000001", "NA-HP-000002", "NA-HP-000003"}


def test_a_partial_name_finds_its_products_and_the_message_narrows_them(shop):  # noqa: F811
    _, store = shop
    names = NameSearch(store)
    assert [r["sku"] for r in names.products("halo 2")] == ["SN-HP-000011"]
    # a model line names its variants, not the case made for it (device before accessory)
    assert {r["sku"] for r in names.products("aurora x2")} == AURORA
    assert [r["sku"] for r in names.products("aurora x2", ["silver"])] == ["NA-HP-000002"]
    # "for" in the mention asks for the accessory
    assert [r["sku"] for r in names.products("case for aurora x2")] == ["SH-HC-000008"]
    assert names.products("zorblax 9000") == [] and names.products("the") == []
    assert names.count_named("wireless headphones", 3) == 3  # a group: more than one product


def test_a_product_named_by_one_of_its_values(shop):  # noqa: F811
    _, store = shop
    names = NameSearch(store)
    # no name holds "midnight", a colour value does
    assert [r["sku"] for r in names.products("the midnight one")] == ["NA-HP-000003"]
    row = names.products("halo 2")[0]
    assert product_attributes(row)["model_line"] == "Halo 2"
    assert product_attributes({"attributes": "not json"}) == {}
