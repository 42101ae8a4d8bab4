"""Entity linking: mentions -> graph nodes (products, brands, categories), plus normalised order ids,
attribute values and money amounts. See `nlu/linking/linker.py` for how mentions are scored."""

from nlu.linking.evaluation import LinkingExample, LinkingReport, evaluate_linking
from nlu.linking.linker import EntityLinker, LinkerConfig
from nlu.linking.text import Money, normalise_order_id, parse_money

__all__ = ["EntityLinker", "LinkerConfig", "LinkingExample", "LinkingReport", "Money", "evaluate_linking",
           "normalise_order_id", "parse_money"]
