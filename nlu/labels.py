"""The intent and entity names of DESIGN sections 4 and 5.

These names are a contract with clients: they appear verbatim in every chat reply, so they are
defined once here and everything else (training data, model heads, dialogue handlers) refers to
these tuples rather than repeating strings.
"""

from __future__ import annotations

INTENT_FAMILIES: dict[str, tuple[str, ...]] = {
    "products": (
        "product_price",
        "product_availability",
        "product_details",
        "product_compare",
        "product_recommend",
        "product_warranty",
        "product_promotions",
    ),
    "orders": (
        "track_order",
        "order_details",
        "cancel_order",
        "change_order",
        "change_shipping_address",
        "set_up_shipping_address",
        "get_refund",
        "track_refund",
        "check_invoice",
        "get_invoice",
        "payment_issue",
        "place_order",
    ),
    "policies": (
        "check_refund_policy",
        "check_cancellation_fee",
        "delivery_options",
        "delivery_period",
        "check_payment_methods",
    ),
    "account": (
        "create_account",
        "delete_account",
        "edit_account",
        "switch_account",
        "recover_password",
        "registration_problems",
        "newsletter_subscription",
    ),
    "service": ("complaint", "review", "contact_customer_service", "contact_human_agent"),
    "conversation": ("greeting", "goodbye", "thanks", "affirm", "deny", "out_of_scope"),
}

INTENTS: tuple[str, ...] = tuple(i for family in INTENT_FAMILIES.values() for i in family)
FAMILY_OF: dict[str, str] = {i: f for f, intents in INTENT_FAMILIES.items() for i in intents}

ENTITY_TYPES: tuple[str, ...] = ("PRODUCT", "BRAND", "CATEGORY", "ORDER_ID", "ATTRIBUTE", "MONEY")

# BIO tag set for the token head; index 0 is "O" so padding-free argmax defaults to "no entity".
BIO_TAGS: tuple[str, ...] = ("O",) + tuple(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I"))

# Slot names used in phrasing files ({product}, {order_id}, ...) mapped to entity types.
SLOT_TYPES: dict[str, str] = {
    "product": "PRODUCT",
    "brand": "BRAND",
    "category": "CATEGORY",
    "order_id": "ORDER_ID",
    "attribute": "ATTRIBUTE",
    "money": "MONEY",
}
