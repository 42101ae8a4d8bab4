"""Entity linking: mentions -> graph nodes (products, brands, categories), plus normalised order ids,
attribute values and money amounts. See `nlu/linking/linker.py` for how mentions are scored.

The linking evaluation (`nlu/linking/evaluation.py`) is imported by name where it is used (tests,
bench/), never from here: serving code does not load it."""

from nlu.linking.linker import EntityLinker, LinkerConfig
from nlu.linking.text import Money, normalise_order_id, parse_money

__all__ = ["EntityLinker", "LinkerConfig", "Money", "normalise_order_id", "parse_money"]
