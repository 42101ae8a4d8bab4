"""Product questions: price, availability, details, comparison, recommendations, warranty and
promotions (DESIGN section 4, "Products").

A product question is about the products its mentions resolve to (linked by the entity linker, or
found by name here), a variant picked by an attribute ("the Aurora X2 in black"), or, with only a
brand or category, a summary of that group. Recommendations follow the wording of the message:
similar, cheaper, compatible accessories, "customers also bought", or personal (the signed-in
customer's history).
"""

from __future__ import annotations

import re
from typing import Any

from nlu.linking.search import product_attributes as attributes  # a product row's attributes as scalars
from nlu.types import Entity
from qa.facts import (
    ComparisonFact,
    Fact,
    ProductFact,
    ProductFields,
    ProductGroupFact,
    PromotionFact,
    RecommendationFact,
    SupplierFact,
    WarrantyFact,
    facts_of,
    first_of,
)
from qa.fields import FieldAsk, humanise
from qa.handlers.base import Ask, Context, Handler, IntentSpec, Outcome
from qa.handlers.shared import (
    MAX_CANDIDATES,
    MAX_LIST,
    ask_for,
    best_by_type,
    clarify_choice,
    clarify_mention,
    entity_of,
    entity_value,
    parse_budget,
    product_fact,
    product_ref,
    recommendation_fact,
    resolve_products,
    round_money,
)
from qa.handlers.wording import (
    Picker,
    attr_text,
    attr_value,
    be,
    day,
    display,
    has,
    is_plural,
    join,
    money,
    named,
    percent,
)
from qa.prompts import (
    FieldQuestion,
    MissingVariant,
    NoProducts,
    ProductNotFound,
    PromotionsAsOf,
    Recommendation,
)
from qa.state import Ref
from qa.text import has_phrase, norm
from qa.types import Retrieval, Status


# -- reply writers (status "ok") -----------------------------------------------------------------------
def product_line(p: ProductFields, *, price: bool = True, stock: bool = False, rating: bool = False) -> str:
    bits = []
    if price and p.price is not None:
        bits.append(money(p.price, p.currency))
    if stock:
        bits.append("in stock" if p.in_stock else "out of stock")
    if rating and p.rating is not None:
        bits.append(f"rated {p.rating}/5")
    return f"{display(p.name)}" + (f" ({', '.join(bits)})" if bits else "")


def _group_intro(r: Retrieval, pick: Picker) -> str | None:
    groups = facts_of(r.facts, ProductGroupFact)
    if not groups:
        return None
    g = groups[0]
    what = " ".join(x for x in (g.attribute, g.brand, g.category) if x) or "matching"
    ranges = [f"{money(x.min_price, x.currency)} to {money(x.max_price, x.currency)}" for x in groups]
    count = sum(x.count for x in groups)
    in_stock = sum(x.in_stock or 0 for x in groups)
    if r.intent == "product_availability":
        head = pick("grp_av", (f"{in_stock} of our {count} {what} products are in stock.",
                               f"We have {in_stock} {what} products in stock (out of {count})."))
        listing = "; ".join(product_line(p, price=False) for p in facts_of(r.facts, ProductFact))
        return head + (f" For example: {listing}." if listing else "")
    head = pick("grp", (f"We have {count} {what} products, priced from {join(ranges)}.",
                        f"Our {count} {what} products range from {join(ranges)}."))
    listing = "; ".join(product_line(p, rating=True) for p in facts_of(r.facts, ProductFact))
    return head + (f" Top rated: {listing}." if listing else "")


def write_price(r: Retrieval, pick: Picker) -> str:
    group = _group_intro(r, pick)
    if group:
        return group
    ps = facts_of(r.facts, ProductFact)
    if len(ps) == 1:
        p = ps[0]
        m = money(p.price, p.currency)
        cost = "cost" if is_plural(p.name) else "costs"
        text = pick("price", (f"{named(p.name, capital=True)} {cost} {m}.", f"{named(p.name, capital=True)} {be(p.name)} {m}.",
                              f"It's {m} for {named(p.name)}."))
        if p.status == "discontinued":
            text += f" Note that {'they have' if is_plural(p.name) else 'it has'} been discontinued."
        return text
    return "Here are the prices: " + "; ".join(f"{display(p.name)}: {money(p.price, p.currency)}"
                                               for p in ps) + "."


def write_availability(r: Retrieval, pick: Picker) -> str:
    group = _group_intro(r, pick)
    if group:
        return group
    out = []
    for p in facts_of(r.facts, ProductFact):
        stock = p.stock or 0
        name, cap, verb = named(p.name), named(p.name, capital=True), be(p.name)
        if p.status == "discontinued":
            out.append(f"{cap} {has(p.name)} been discontinued" + (f"; {stock} are left." if stock else
                                                                  f" and {verb} no longer in stock."))
        elif p.stock is None:
            out.append(f"I don't have a stock figure for {name}.")
        elif stock <= 0:
            out.append(pick("oos_p", (f"Sorry, {name} {verb} out of stock right now.",
                                      f"{cap} {verb} currently out of stock.")))
        elif stock <= 5:
            out.append(pick("low", (f"Yes, {name} {verb} in stock, but only {stock} are left.",
                                    f"Hurry: only {stock} of {name} are left in stock.")))
        else:
            out.append(pick("in", (f"Yes, {name} {verb} in stock ({stock} available).",
                                   f"Good news: we have {stock} of {name} in stock.",
                                   f"{cap} {verb} available; {stock} are in stock.")))
    return " ".join(out)


def write_details(r: Retrieval, pick: Picker) -> str:
    if isinstance(r.prompt, FieldQuestion):
        return write_field(r, r.prompt, pick)
    group = _group_intro(r, pick)
    if group:
        return group
    out = []
    for p in facts_of(r.facts, ProductFact):
        s = named(p.name, capital=True) + (f", from our {p.category} range," if p.category else "")
        if p.price is not None:
            s += f" {'cost' if is_plural(p.name) else 'costs'} {money(p.price, p.currency)}."
        else:
            s = s.rstrip(",") + "."
        if p.description:
            s += f" {p.description}"
        attrs = p.attributes or {}
        if attrs:
            s += " " + pick("specs", ("Specs: ", "Key details: ")) + "; ".join(
                attr_text(k, v) for k, v in attrs.items() if k != "compatible_with") + "."
            if attrs.get("compatible_with"):
                s += f" It fits the {attrs['compatible_with']}."
        it = "them" if is_plural(p.name) else "it"
        if p.rating is not None:
            s += f" Customers rate {it} {p.rating}/5."
        if p.warranty_months:
            s += f" Warranty: {p.warranty_months} months."
        if p.status == "discontinued":
            s += " They have been discontinued." if it == "them" else " It has been discontinued."
        out.append(s)
    return " ".join(out)


def field_value(p: ProductFields, q: FieldQuestion, supplier: SupplierFact | None = None) -> str | None:
    """The asked field's value for one product fact, as a reply shows it (None: not recorded)."""
    if q.kind == "unknown":
        return None
    if q.kind == "supplier":
        return supplier.name if supplier is not None else None
    if q.kind == "attribute":
        attrs = {k: v for k, v in (p.attributes or {}).items() if v not in (None, "")}
        if q.field in attrs:
            return attr_value(q.field, attrs[q.field])
        # the fact holds one other key the same words ask for ("battery_life_hours" for "battery")
        return attr_value(*next(iter(attrs.items()))) if len(attrs) == 1 else None
    if q.field == "rating":
        return f"{p.rating:g}/5" if p.rating is not None else None
    if q.field == "sku":
        return p.sku
    if q.field == "status":
        return p.status
    value = getattr(p, q.field, None) if q.field in ProductFields.model_fields else None
    return None if value in (None, "") else str(value)


_ACRONYMS = frozenset({"isbn", "sku", "ean", "upc", "gtin", "mpn", "asin", "gsm", "rpm", "ram", "usb", "spf", "dpi",
                       "led", "ip", "id"})


def _label(label: str) -> str:
    """A field's name as a sentence shows it ("isbn" -> "ISBN")."""
    return " ".join(w.upper() if w in _ACRONYMS else w for w in label.split())


def _field_sentence(name: str, q: FieldQuestion, value: str, pick: Picker, supplier: SupplierFact | None, *,
                    plural: bool = False, label: str | None = None) -> str:
    # Named as the catalog names it, without an article: titles read right ("The author of Dune").
    subject = name if plural else display(name)
    if q.kind == "supplier" and supplier is not None:
        where = f" ({supplier.country})" if supplier.country else ""
        text = f"{subject} {be(name)} supplied by {supplier.name}{where}."
        if q.contact:
            text += (f" You can reach them on {supplier.phone}." if supplier.phone else
                     " I don't have a phone number for them.")
        return text
    cap = subject[0].upper() + subject[1:]
    if q.field == "category" and q.kind == "product":
        return pick("f_cat", (f"{cap} {'are' if plural else be(name)} in our {value} category.",
                              f"You'll find {subject} in our {value} category."))
    if q.field == "rating" and q.kind == "product":
        return f"Customers rate {subject} {value}."
    if q.field == "description" and q.kind == "product":
        return f"{cap}: {value}"
    if q.field == "status" and q.kind == "product":
        verb = "have" if plural else has(name)
        return (f"{cap} {verb} been discontinued." if value == "discontinued" else
                f"{cap} {'are' if plural else be(name)} part of our current range.")
    label = _label(label or q.label)
    if q.asked_value is not None and q.yes_no:
        same = value.strip().lower() == q.asked_value.strip().lower()
        return ("Yes, " if same else "No, ") + f"the {label} of {subject} is {value}."
    if q.kind == "attribute" and re.fullmatch(r"\d+(?:\.\d+)?", value) and label.endswith("s") and \
            not label.endswith("ss") and " " not in label:
        return f"There are {value} {label} in {subject}."  # "There are 320 pages in Dune."
    return f"The {label} of {subject} is {value}."


def _key_label(p: ProductFields, q: FieldQuestion) -> str | None:
    """The name of the attribute a product's answer came from, when it is another key than the
    one asked ("battery life" answering "battery")."""
    attrs = p.attributes or {}
    if q.kind != "attribute" or q.field in attrs or len(attrs) != 1:
        return None
    return humanise(next(iter(attrs)))


def write_field(r: Retrieval, q: FieldQuestion, pick: Picker) -> str:
    """One product field, stated for each product asked about; "I don't have that information"
    for a product without it (never another field in its place)."""
    values: list[tuple[ProductFact, SupplierFact | None]] = []
    for f in r.facts:  # a supplier fact follows the product it supplies
        if isinstance(f, ProductFact):
            values.append((f, None))
        elif isinstance(f, SupplierFact) and values and values[-1][1] is None:
            values[-1] = (values[-1][0], f)
    shown = [(p, field_value(p, q, sup), sup) for p, sup in values]
    if q.group:
        # a brand's or category's products, or a model line's variants: the distinct values they have
        found = list(dict.fromkeys(v for _, v, _ in shown if v is not None))
        if q.line:
            return f"{named(q.group, capital=True)} comes in {join(found[:8], 'and')}."
        if not found:
            return f"I don't have that information for our {q.group} products."
        return f"The {_label(q.label)} of our {q.group} products: {join(found[:8])}."
    known = [v for _, v, _ in shown if v is not None]
    if len(shown) > 1 and len(known) == len(shown) and len(set(known)) == 1 and q.kind != "supplier":
        # editions that agree ("the author of X (Hardcover) and X (Paperback) is ...")
        together = join([display(p.name) for p, _, _ in shown])
        return _field_sentence(together, q, known[0], pick, None, plural=True)
    out = [_field_sentence(p.name or p.sku, q, v, pick, sup, label=_key_label(p, q)) for p, v, sup in shown
           if v is not None]
    missing = [p for p, v, _ in shown if v is None]
    if missing:
        names = join([display(p.name or p.sku) for p in missing])
        out.append(pick("f_none", (f"I don't have that information for {names}.",
                                   f"Sorry, I don't have that information for {names}.")))
    return " ".join(out)


def write_compare(r: Retrieval, pick: Picker) -> str:
    ps = facts_of(r.facts, ProductFact)
    lines = []
    for p in ps:
        bits = [money(p.price, p.currency) if p.price is not None else "",
                "in stock" if p.in_stock else "out of stock",
                f"rated {p.rating}/5" if p.rating is not None else "",
                f"{p.warranty_months}-month warranty" if p.warranty_months else ""]
        attrs = p.attributes or {}
        shared = [k for k in attrs if all(k in (q.attributes or {}) for q in ps) and k != "compatible_with"]
        bits += [attr_text(k, attrs[k]) for k in shared[:3]]
        lines.append(f"- {display(p.name)}: " + ", ".join(b for b in bits if b))
    head = pick("cmp", ("Here's how they compare:", "Side by side:", "A quick comparison:"))
    c = first_of(r.facts, ComparisonFact) or ComparisonFact()
    lead = ""
    if c.cheaper_name and c.price_difference:
        # the answer to "which is cheaper?" first, then the details
        dearest = max((p for p in ps if p.price is not None), key=lambda p: p.price or 0.0, default=None)
        than = f" than {named(dearest.name)}" if dearest is not None and dearest.name != c.cheaper_name else ""
        lead = (f"{named(c.cheaper_name, capital=True)} {be(c.cheaper_name)} "
                f"{money(c.price_difference, c.currency)} cheaper{than}.")
        if c.better_rated_name:
            lead += ((" They also have" if is_plural(c.cheaper_name) else " It also has") + " the better rating."
                     if c.better_rated_name == c.cheaper_name else
                     f" {named(c.better_rated_name, capital=True)} {has(c.better_rated_name)} the better rating.")
    elif c.better_rated_name:
        lead = f"{named(c.better_rated_name, capital=True)} {has(c.better_rated_name)} the better rating."
    return (lead + "\n" if lead else "") + head + "\n" + "\n".join(lines)


def write_warranty(r: Retrieval, pick: Picker) -> str:
    out = []
    for w in facts_of(r.facts, WarrantyFact):
        if w.source == "product":
            out.append(pick("w_p", (f"{named(w.name, capital=True)} comes with a {w.months}-month warranty.",
                                    f"{named(w.name, capital=True)} has its own {w.months}-month warranty.")))
        elif w.source == "policy":
            span = f"{w.months} months" if w.months is not None else "the period described"
            where = {"sku": "which applies to this product", "brand": f"which applies to {w.applies_to} products",
                     "category": f"which applies to {w.applies_to}",
                     "store": "which applies store-wide"}.get(w.scope or "", "")
            out.append(pick("w_pol", (
                f"{named(w.name, capital=True)} is covered for {span} under our \"{w.title}\" policy, {where}.",
                f"{named(w.name, capital=True)} has a warranty of {span} (\"{w.title}\", {where}).")))
            if w.text:
                out.append(w.text)
        else:
            out.append(f"I couldn't find a warranty for {named(w.name)}.")
    return " ".join(out)


def write_promotions(r: Retrieval, pick: Picker) -> str:
    promos = facts_of(r.facts, PromotionFact)
    ps = facts_of(r.facts, ProductFact)
    about = f" on {named(ps[0].name)}" if ps else ""
    if not promos:
        return pick("np", (f"There are no promotions{about} right now.",
                           f"I'm afraid there's no promotion running{about} at the moment."))
    lines = []
    for p in promos:
        until = f", until {day(p.ends)}" if p.ends else ""
        lines.append(f"- {p.code}: {p.description or ''} ({percent(p.discount_percent)} off{until})")
    head = pick("pr", (f"These promotions apply{about} right now:", f"Current deals{about}:"))
    return head + "\n" + "\n".join(lines)


def write_recommendations(r: Retrieval, pick: Picker) -> str:
    recs = facts_of(r.facts, RecommendationFact)
    src = facts_of(r.facts, ProductFact)
    name = named(src[0].name) if src else ""
    mode = r.prompt.mode if isinstance(r.prompt, Recommendation) else None
    if mode == "compatible":
        head = pick("rc_c", (f"These accessories are made for {name}:", f"Accessories that fit {name}:"))
    elif mode == "also_bought":
        head = pick("rc_a", (f"Customers who bought {name} also bought:",
                             f"Often bought together with {name}:"))
    elif mode == "cheaper":
        head = pick("rc_ch", (f"Cheaper alternatives to {name}:", f"If {name} {be(src[0].name) if src else 'is'} over budget, consider:"))
    elif mode == "personal":
        head = pick("rc_p", ("Based on your past orders, you might like:", "Picked for you from your order history:"))
    elif mode == "similar":
        head = pick("rc_s", (f"Products similar to {name}:", f"If you like {name}, have a look at:"))
    else:
        budget = r.prompt.budget if isinstance(r.prompt, Recommendation) else None
        head = pick("rc_f", ("Here are some good options:", "You might like these:"))
        if budget:
            cur = recs[0].currency if recs else None
            head = pick("rc_b", (f"Good options up to {money(budget, cur)}:", f"Within a budget of {money(budget, cur)}:"))
    lines = [f"- {product_line(p, stock=True, rating=True)}" for p in recs]
    return head + "\n" + "\n".join(lines)


# "what colours does it come in?", "which sizes are there?": the values across a model line
_OPTIONS_RE = re.compile(r"\b(come in|comes in|available in|options|choices|variants|versions|which ones)\b")


def _bare(name: str, *, edition: bool = True) -> str:
    """A name compared loosely: lower case, no leading article, no punctuation; without `edition`,
    also without a bracketed or comma-separated variant ("Dune (Paperback)" -> "dune")."""
    if not edition:
        name = re.sub(r"\s*\([^)]*\)\s*$", "", name).split(", ")[0]
    words = re.findall(r"[a-z0-9]+", name.lower())
    return " ".join(words[1:] if words and words[0] in ("the", "a", "an") else words)


def _supplier_fact(row: dict[str, Any]) -> SupplierFact:
    return SupplierFact(**{k: row[k] for k in ("supplier_id", "name", "country", "phone") if row.get(k) is not None})


# -- the intents ---------------------------------------------------------------------------------------
PRICE = IntentSpec(
    "product_price", write=write_price,
    suggestions=("Is it in stock?", "Are there any promotions on it?", "Show me similar products"),
    cue=re.compile(r"\b(price|prices|cost|costs|how much|expensive|cheap)\b"))
AVAILABILITY = IntentSpec(
    "product_availability", write=write_availability,
    suggestions=("How much is it?", "What's the warranty?", "Show me cheaper alternatives"),
    cue=re.compile(r"\b(stock|available|availability|sold out|in store)\b"))
DETAILS = IntentSpec(
    "product_details", write=write_details,
    suggestions=("How much is it?", "Is it in stock?", "Which accessories fit it?"),
    cue=re.compile(r"\b(spec|specs|details?|features?|weigh|weight|battery|describe|dimensions?|tell me about|"
                   r"tell me more|more about|info on|information (?:on|about)|looking at)\b"))
COMPARE = IntentSpec(
    "product_compare", write=write_compare,
    suggestions=("Which one is in stock?", "What's the warranty on the cheaper one?"),
    cue=re.compile(r"\b(compare|comparison|vs|versus|difference|better)\b"))
RECOMMEND = IntentSpec(
    "product_recommend", write=write_recommendations,
    suggestions=("Tell me more about the first one", "Is the first one in stock?"),
    cue=re.compile(r"\b(recommend|suggest|similar|alternatives?|accessor(y|ies)|compatible|also bought|goes with)\b"))
WARRANTY = IntentSpec(
    "product_warranty", write=write_warranty,
    suggestions=("Can I return it?", "How much is it?"),
    cue=re.compile(r"\b(warranty|guarantee)\b"))
PROMOTIONS = IntentSpec(
    "product_promotions", write=write_promotions,
    suggestions=("How much is it?", "Is it in stock?"),
    cue=re.compile(r"\b(discount|promo|promotion|promotions|deal|deals|sale|coupon|offer)\b"),
    answers_without_facts=True)

# The product fields each plain question shows (None: all of them).
_FIELDS: dict[str, tuple[str, ...] | None] = {
    PRICE.name: ("price", "currency", "status"),
    AVAILABILITY.name: ("stock", "in_stock", "status"),
    DETAILS.name: None,
}

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
    for e in sorted((e for e in entities if e.start is not None and e.end is not None), key=lambda e: -(e.start or 0)):
        text = text[: e.start] + " " + text[e.end:]
    text = norm(text)
    for mode, pattern in _MODES:
        if pattern.search(text):
            return mode
    return "similar"


class Products(Handler):
    family = "products"
    names_products = True
    intents = (PRICE, AVAILABILITY, DETAILS, COMPARE, RECOMMEND, WARRANTY, PROMOTIONS)
    queries = frozenset({
        "products.by_skus", "products.line_variants",
        "products.list_filtered",
        "products.summary_filtered", "products.similar", "products.cheaper", "products.compatible",
        "products.also_bought", "products.personal", "products.personal_top_rated",
        "products.promotions_for_product", "products.promotions_in_force", "policies.for_product",
        "products.suppliers",
    })

    # -- retrieval -------------------------------------------------------------------------------
    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        intent = ask.intent
        entities = ask.entities
        if ask.field is not None:
            entities = self._field_mention(ctx, ask.field, entities)
        asked = ask.field if intent == DETAILS.name else None

        def clarify(c: Context, i: str, conf: float, e: Entity, others: list[Entity]) -> Outcome:
            return self._clarify(c, i, conf, e, others, field=asked)

        rows, entities, early = resolve_products(ctx, intent, entities, clarify=clarify)
        if early is not None:
            return early
        brand = entity_value(entity_of(entities, "BRAND"))
        category = entity_value(entity_of(entities, "CATEGORY"))
        attr_e = entity_of(entities, "ATTRIBUTE")
        attribute = norm(attr_e.node_id or attr_e.text) if attr_e else None
        money_e = entity_of(entities, "MONEY")
        budget = parse_budget(money_e.node_id or money_e.text) if money_e else None

        if intent == RECOMMEND.name:
            return self._recommend(ctx, rows, entities, ask.message, ask.customer_id, brand, category, attribute,
                                   budget)
        if intent == PROMOTIONS.name and not rows:
            return self._promotions_general(ctx, entities, brand, category)
        if intent == COMPARE.name:
            if len(rows) < 2:
                return ask_for(intent, 1.0, "PRODUCT", entities, "compare_with")
            return self._compare(rows, entities)
        if not rows:
            linked_group = any(e.node_id for e in entities if e.type in ("BRAND", "CATEGORY"))
            if asked is not None and not linked_group:
                # a field question whose product name matches nothing: say so, not "no such products"
                unlinked = [e.text for e in entities if e.source == "message" and not e.node_id and not e.candidates]
                named = unlinked[0] if unlinked else (asked.rests[0] if asked.rests else "")
                if named:
                    return Outcome(Retrieval(intent=intent, status="not_found", query_name=None,
                                             prompt=ProductNotFound(product=named)), entities)
            if asked is not None and (brand or category):
                return self._group_field(ctx, entities, brand, category, attribute, asked)
            if brand or category:
                return self._group(ctx, intent, entities, brand, category, attribute)
            return ask_for(intent, 1.0, "PRODUCT", entities, "which_product")
        row = rows[0]
        if asked is not None and asked.value is not None and attribute == norm(asked.value):
            attribute = None  # "is it in English?" asks about the value, it does not pick a variant
        if attribute:
            picked = self._variant(ctx, intent, row, attribute, entities)
            if isinstance(picked, Outcome):
                return picked
            if picked["sku"] != row["sku"]:
                entities = entities + [Entity(type="PRODUCT", text=picked.get("name") or picked["sku"],
                                              node_id=picked["sku"], score=1.0, source="context")]
                entities = [e for e in entities if not (e.type == "PRODUCT" and e.node_id == row["sku"])]
            rows = [picked] + rows[1:]
        if asked is not None:
            if asked.kind == "attribute" and _OPTIONS_RE.search(norm(ask.message)) and len(rows) == 1:
                line = self._line_field(ctx, row, entities, asked)
                if line is not None:
                    return line
            return self._field(ctx, rows[:4], entities, asked)
        if intent == WARRANTY.name:
            return self._warranty(ctx, rows, entities)
        if intent == PROMOTIONS.name:
            return self._promotions_for(ctx, rows, entities)
        fields = _FIELDS.get(intent, ("price", "currency", "stock", "in_stock", "status"))
        facts: list[Fact] = [product_fact(r, fields) for r in rows]
        return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="products.by_skus"),
                       entities, mentioned=[product_ref(r) for r in rows])

    def clarify_mention(self, intent: str, confidence: float, entity: Entity, others: list[Entity],
                        ctx: Context, *, field: FieldAsk | None = None) -> Outcome | None:
        return self._clarify(ctx, intent, confidence, entity, others, field=field if intent == DETAILS.name else None)

    def _clarify(self, ctx: Context, intent: str, confidence: float, entity: Entity, others: list[Entity], *,
                 field: FieldAsk | None = None) -> Outcome:
        cands = entity.candidates[:MAX_CANDIDATES]
        if field is not None and entity.type == "PRODUCT":
            # the candidates named exactly as asked ("Harry Potter and the Prisoner of Azkaban"; "Dune"
            # in its two editions, not "Dune Messiah") are the ones meant
            exact = [c for c in cands if _bare(c.name) == _bare(entity.text)] or \
                [c for c in cands if _bare(c.name, edition=False) == _bare(entity.text)]
            if len(exact) == 1:
                rows = ctx.run("products.by_skus", skus=[exact[0].node_id])
                if rows:
                    chosen = entity.model_copy(update={"node_id": exact[0].node_id, "ambiguous": False,
                                                       "score": exact[0].score})
                    return self._field(ctx, rows, [chosen if e is entity else e for e in others], field)
            if len(exact) > 1:
                cands = exact
                narrowed = entity.model_copy(update={"candidates": exact})
                others = [narrowed if e is entity else e for e in others]
                entity = narrowed
        if field is not None and entity.type == "PRODUCT" and 2 <= len(cands):
            # A field every candidate has alike ("who wrote it?" of two editions): answered at once.
            rows = ctx.run("products.by_skus", skus=[c.node_id for c in cands])
            order = [c.node_id for c in cands]
            rows.sort(key=lambda r: order.index(r["sku"]) if r["sku"] in order else len(order))
            agreed = self._agreed_field(ctx, rows, others, field)
            if agreed is not None:
                return agreed
        linked = [e for e in others if e.type == "PRODUCT" and e.node_id and e is not entity]
        if intent == COMPARE.name and entity.type == "PRODUCT" and 2 <= len(cands) <= 4 and not linked:
            # "compare the Nova 5 128 GB and 256 GB": the candidates are what is to be compared.
            rows = ctx.run("products.by_skus", skus=[c.node_id for c in cands])
            if len(rows) >= 2:
                order = [c.node_id for c in cands]
                return self._compare(sorted(rows, key=lambda r: order.index(r["sku"])), others)
        return clarify_mention(ctx, intent, confidence, entity, others)

    # -- a field of a product (qa/fields.py) -----------------------------------------------------
    def _field_mention(self, ctx: Context, asked: FieldAsk, entities: list[Entity]) -> list[Entity]:
        """The product a field question names when the model did not tag it as one: its tagged
        words that link to nothing (a title read as a brand), or the words left once the question's
        own words are taken out ("who's alchemist by?"), linked by the entity linker."""
        if any(e.type == "PRODUCT" and (e.node_id or e.candidates) for e in entities):
            # a fragment of the same name that linked to nothing ("cien años de soledad": "años") goes
            return [e for e in entities if e.type != "PRODUCT" or e.node_id or e.candidates or e.source != "message"]
        stray = [e for e in entities if e.source == "message" and not e.candidates and
                 (e.type == "PRODUCT" or (e.type in ("BRAND", "CATEGORY") and not e.node_id) or
                  (e.type == "ATTRIBUTE" and (asked.value is None or norm(e.text) != norm(asked.value))))]
        if not stray and any(e.type == "PRODUCT" for e in entities):
            return entities
        linked = {norm(e.text) for e in entities if e.type in ("BRAND", "CATEGORY") and e.node_id}
        tries = [r for r in asked.rests if norm(r) not in linked] + [e.text for e in stray]
        # one product, or (for a field of its own, named in the question) the editions of one name;
        # a price of "Nordic Audio headphones" stays a question about the brand's headphones
        single = asked.intent != DETAILS.name or asked.source == "context"
        words = {w for r in asked.rests for w in r.split()}
        if ctx.link_product is None:
            return entities
        for text in tries:
            # the question's other words pick among editions ("the 1984 paperback")
            found = ctx.link_product(text, sorted(words - set(norm(text).split())))
            if not (found.node_id or found.candidates) or (single and not found.node_id):
                continue
            keep = [e for e in entities if all(e is not x for x in stray) and e.type != "PRODUCT"]
            product = found.model_copy(update={"text": text, "candidates": found.candidates[:MAX_CANDIDATES]})
            return keep + [product]
        return entities

    def _field(self, ctx: Context, rows: list[dict[str, Any]], entities: list[Entity], asked: FieldAsk
               ) -> Outcome:
        """The asked field of each product (only that field: never another in its place)."""
        prompt = FieldQuestion(field=asked.key, label=asked.label, kind=asked.kind, asked_value=asked.value,
                               yes_no=asked.yes_no, contact=asked.contact)
        facts, query, _ = self._field_facts(ctx, rows, asked, prompt)
        refs = [product_ref(r) for r in rows]
        return Outcome(Retrieval(intent=DETAILS.name, status="ok", facts=facts, query_name=query, prompt=prompt),
                       entities, mentioned=refs[:1], listed=refs if len(refs) > 1 else [])

    def _group_field(self, ctx: Context, entities: list[Entity], brand: str | None, category: str | None,
                     attribute: str | None, asked: FieldAsk) -> Outcome:
        """A field asked of a brand's or a category's products ("what file format are your
        e-books?"): the products' values of it, as facts; the writer names the distinct ones."""
        rows = ctx.run("products.list_filtered", brand=brand, category=category, attribute=attribute,
                       max_price=None, only_active=True, limit=50)
        prompt = FieldQuestion(field=asked.key, label=asked.label, kind=asked.kind, asked_value=asked.value,
                               yes_no=asked.yes_no, contact=asked.contact, group=" ".join(
                                   x for x in (attribute, brand, category) if x) or None)
        facts, query, _ = self._field_facts(ctx, rows, asked, prompt)
        mentioned = [Ref(type=t, node_id=v, name=v, label=lbl) for t, v, lbl in
                     (("BRAND", brand, "Brand"), ("CATEGORY", category, "Category")) if v]
        status: Status = "ok" if rows else "not_found"
        return Outcome(Retrieval(intent=DETAILS.name, status=status, facts=facts,
                                 query_name="products.list_filtered" if query == "products.by_skus" else query,
                                 prompt=prompt if rows else NoProducts(brand=brand, category=category,
                                                                       attribute=attribute)),
                       entities, mentioned=mentioned)

    def _line_field(self, ctx: Context, row: dict[str, Any], entities: list[Entity], asked: FieldAsk
                    ) -> Outcome | None:
        """"What colours does it come in?": the values of the asked field across the product's
        model line (None when it has no line, or one value only)."""
        line = str(attributes(row).get("model_line") or "")
        if not line or not row.get("brand"):
            return None
        variants = ctx.run("products.line_variants", brand=row["brand"], line=line.lower(), limit=50)
        prompt = FieldQuestion(field=asked.key, label=asked.label, kind=asked.kind, group=line, line=True)
        facts, _, values = self._field_facts(ctx, variants, asked, prompt)
        if len({v for v in values if v is not None}) < 2:
            return None
        return Outcome(Retrieval(intent=DETAILS.name, status="ok", facts=facts, query_name="products.line_variants",
                                 prompt=prompt), entities, mentioned=[product_ref(row)],
                       listed=[product_ref(v) for v in variants[:MAX_LIST]])

    def _agreed_field(self, ctx: Context, rows: list[dict[str, Any]], entities: list[Entity], asked: FieldAsk
                      ) -> Outcome | None:
        """The candidates of an ambiguous mention answered at once when they all have the same value
        of the asked field (two editions of one book, one author); None when they differ."""
        prompt = FieldQuestion(field=asked.key, label=asked.label, kind=asked.kind, asked_value=asked.value,
                               yes_no=asked.yes_no, contact=asked.contact)
        facts, query, values = self._field_facts(ctx, rows, asked, prompt)
        if len(rows) < 2 or len(set(values)) != 1:
            return None
        refs = [product_ref(r) for r in rows]
        reported = [e.model_copy(update={"node_id": None, "candidates": e.candidates}) if e.type == "PRODUCT" else e
                    for e in entities]
        return Outcome(Retrieval(intent=DETAILS.name, status="ok", facts=facts, query_name=query, prompt=prompt),
                       reported, mentioned=refs[:1], listed=refs)

    @staticmethod
    def _field_facts(ctx: Context, rows: list[dict[str, Any]], asked: FieldAsk, prompt: FieldQuestion
                     ) -> tuple[list[Fact], str, list[str | None]]:
        """Facts holding only the asked field (and the supplier, for a supplier question), the
        query that read them, and each product's value as a reply shows it."""
        keep: tuple[str, ...] = ("status",)
        if asked.kind == "attribute":
            keep = ("attributes",)
        elif asked.kind == "product":
            keep = {"sku": ()}.get(asked.key, (asked.key,))
        query = "products.by_skus"
        suppliers: dict[str, SupplierFact] = {}
        if asked.kind == "supplier":
            query = "products.suppliers"
            suppliers = {r["sku"]: _supplier_fact(r) for r in ctx.run(query, skus=[r["sku"] for r in rows])}
        facts: list[Fact] = []
        values: list[str | None] = []
        for r in rows:
            fact = product_fact(r, keep)
            if fact.attributes is not None:
                # the asked key, or the first other key the same words ask for that this product has
                have = fact.attributes
                key = next((k for k in (asked.key, *asked.alternates) if have.get(k) not in (None, "")), asked.key)
                fact.attributes = {k: v for k, v in have.items() if k == key}
            facts.append(fact)
            sup = suppliers.get(r["sku"])
            if sup is not None:
                facts.append(sup)  # right after its product: the writer pairs them so
            values.append(field_value(fact, prompt, sup))
        return facts, query, values

    def _variant(self, ctx: Context, intent: str, row: dict[str, Any], attribute: str, entities: list[Entity]
                 ) -> dict[str, Any] | Outcome:
        values = [str(v).lower() for v in (row.get("attr_values") or [])]
        if attribute in values or has_phrase((row.get("name") or "").lower(), attribute):
            return row
        attrs = attributes(row)
        line = str(attrs.get("model_line") or "").lower()
        variants = ctx.run("products.line_variants", brand=row.get("brand") or "", line=line, limit=50) \
            if line and row.get("brand") else []
        match = [v for v in variants if attribute in [str(x).lower() for x in (v.get("attr_values") or [])]
                 or has_phrase((v.get("name") or "").lower(), attribute)]
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            e = Entity(type="PRODUCT", text=f"{attrs.get('model_line') or row.get('name')} {attribute}",
                       source="context")
            return clarify_choice(intent, 1.0, e, [product_ref(v) for v in match[:MAX_CANDIDATES]],
                                  [x for x in entities if x.type != "PRODUCT"], "products.line_variants")
        shown = (variants or [row])[:MAX_LIST]
        facts: list[Fact] = [product_fact(v, ("stock", "in_stock", "status")) for v in shown]
        return Outcome(
            Retrieval(intent=intent, status="not_found", facts=facts, query_name="products.line_variants",
                      prompt=MissingVariant(missing_attribute=attribute,
                                            line=str(attrs.get("model_line") or row.get("name")))),
            entities, mentioned=[product_ref(row)], listed=[product_ref(v) for v in shown])

    def _group(self, ctx: Context, intent: str, entities: list[Entity], brand: str | None, category: str | None,
               attribute: str | None) -> Outcome:
        params = dict(brand=brand, category=category, attribute=attribute)
        availability = intent == AVAILABILITY.name  # wants in-stock rows: read further
        rows = ctx.run("products.list_filtered", **params, max_price=None, only_active=True,
                       limit=50 if availability else MAX_LIST)
        if availability:
            rows = [r for r in rows if (r.get("stock") or 0) > 0][:MAX_LIST]
        summary = ctx.run("products.summary_filtered", **params)
        mentioned = [Ref(type=t, node_id=v, name=v, label=lbl) for t, v, lbl in
                     (("BRAND", brand, "Brand"), ("CATEGORY", category, "Category")) if v]
        if not summary:
            return Outcome(Retrieval(intent=intent, status="not_found", query_name="products.list_filtered",
                                     prompt=NoProducts(brand=brand, category=category, attribute=attribute)),
                           entities, mentioned=mentioned)
        facts: list[Fact] = [ProductGroupFact(
            brand=brand, category=category, attribute=attribute, count=s["count"], in_stock=s["in_stock"],
            min_price=round_money(s["min_price"]), max_price=round_money(s["max_price"]), currency=s["currency"])
            for s in summary]
        fields = ("price", "currency", "stock", "in_stock", "status", "rating")
        facts += [product_fact(r, fields) for r in rows]
        return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="products.list_filtered"),
                       entities, mentioned=mentioned, listed=[product_ref(r) for r in rows])

    def _compare(self, rows: list[dict[str, Any]], entities: list[Entity]) -> Outcome:
        fields = ("brand", "category", "price", "currency", "stock", "in_stock", "rating", "warranty_months",
                  "attributes", "status")
        facts: list[Fact] = [product_fact(r, fields) for r in rows[:4]]
        same_currency = len({r.get("currency") for r in rows[:4]}) == 1
        priced = [r for r in rows[:4] if r.get("price") is not None]
        comp = ComparisonFact()
        if same_currency and len(priced) >= 2:
            lo, hi = min(priced, key=lambda r: r["price"]), max(priced, key=lambda r: r["price"])
            comp.cheaper = lo["sku"]
            comp.cheaper_name = lo.get("name")
            comp.price_difference = round_money(hi["price"] - lo["price"])
            comp.currency = lo.get("currency")
        rated = [r for r in rows[:4] if r.get("rating") is not None]
        if len(rated) >= 2 and len({r["rating"] for r in rated}) > 1:
            best = max(rated, key=lambda r: r["rating"])
            comp.better_rated = best["sku"]
            comp.better_rated_name = best.get("name")
        if comp.model_fields_set:
            facts.append(comp)
        refs = [product_ref(r) for r in rows[:4]]
        return Outcome(Retrieval(intent=COMPARE.name, status="ok", facts=facts, query_name="products.by_skus"),
                       entities, mentioned=refs[:1], listed=refs)

    def _warranty(self, ctx: Context, rows: list[dict[str, Any]], entities: list[Entity]) -> Outcome:
        facts: list[Fact] = []
        query = "products.by_skus"
        for r in rows[:3]:
            if r.get("warranty_months") not in (None, ""):
                facts.append(WarrantyFact(sku=r["sku"], name=r.get("name"), months=int(r["warranty_months"]),
                                          source="product"))
                continue
            best = best_by_type(ctx.run("policies.for_product", sku=r["sku"], types=["warranty"])).get("warranty")
            query = "policies.for_product"
            if best is None:
                facts.append(WarrantyFact(sku=r["sku"], name=r.get("name"), source="none"))
                continue
            days = best.get("days")
            fact = WarrantyFact(sku=r["sku"], name=r.get("name"), source="policy", policy_id=best["policy_id"],
                                title=best.get("title"), text=best.get("text"), scope=best.get("scope"),
                                applies_to=best.get("target") or "store")
            if days is not None:
                fact.days = int(days)
                fact.months = round(int(days) / 30.4375)
            facts.append(fact)
        return Outcome(Retrieval(intent=WARRANTY.name, status="ok", facts=facts, query_name=query),
                       entities, mentioned=[product_ref(r) for r in rows[:3]])

    @staticmethod
    def _promotion_facts(rows: list[dict[str, Any]]) -> list[Fact]:
        out: list[Fact] = []
        for r in rows:
            data = {"code": r["code"], "description": r.get("description"),
                    "discount_percent": r.get("discount_percent"),
                    "starts": (r.get("starts") or "")[:10] or None, "ends": (r.get("ends") or "")[:10] or None,
                    "applies_to": r.get("applies_to") or "store-wide"}
            out.append(PromotionFact(**{k: v for k, v in data.items() if v is not None}))
        return out

    def _promotions_for(self, ctx: Context, rows: list[dict[str, Any]], entities: list[Entity]) -> Outcome:
        today = ctx.clock().date().isoformat()
        row = rows[0]
        promos = sorted(ctx.run("products.promotions_for_product", sku=row["sku"], today=today),
                        key=lambda p: (-(p.get("discount_percent") or 0), p["code"]))
        facts: list[Fact] = [product_fact(row, ("price", "currency", "status"))]
        facts += self._promotion_facts(promos)
        return Outcome(Retrieval(intent=PROMOTIONS.name, status="ok", facts=facts,
                                 query_name="products.promotions_for_product", prompt=PromotionsAsOf(today=today)),
                       entities, mentioned=[product_ref(row)])

    def _promotions_general(self, ctx: Context, entities: list[Entity], brand: str | None, category: str | None
                            ) -> Outcome:
        today = ctx.clock().date().isoformat()
        promos = ctx.run("products.promotions_in_force", today=today, limit=20)
        if brand or category:
            wanted = [f"brand:{brand}".lower() if brand else None, f"category:{category}".lower() if category else None]
            promos = [p for p in promos if not p.get("applies_to")
                      or any(w and w in (p.get("applies_to") or "").lower() for w in wanted)]
        return Outcome(Retrieval(intent=PROMOTIONS.name, status="ok", facts=self._promotion_facts(promos),
                                 query_name="products.promotions_in_force", prompt=PromotionsAsOf(today=today)),
                       entities)

    # -- recommendations -------------------------------------------------------------------------
    def _recommend(self, ctx: Context, rows: list[dict[str, Any]], entities: list[Entity], message: str,
                   customer_id: str | None, brand: str | None, category: str | None, attribute: str | None,
                   budget: float | None) -> Outcome:
        mode = recommend_mode(message, entities)
        fields = ("brand", "category", "price", "currency", "stock", "in_stock", "rating", "status")
        recs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        query = None
        source = rows[0] if rows else None
        from_context = all(e.source == "context" for e in entities if e.type == "PRODUCT")
        if mode == "personal" and customer_id and from_context:
            source = None  # "recommend something for me": the history, not the product last discussed
        if source is not None:
            line = str(attributes(source).get("model_line") or "").lower() or None
            if mode == "compatible":
                recs, query = self._compatible(ctx, source), "products.compatible"
            elif mode == "also_bought":
                query = "products.also_bought"
                recs = [(r, {"together": r["together"]}) for r in
                        ctx.run(query, sku=source["sku"], line=line, limit=MAX_LIST)]
            elif mode == "cheaper":
                query = "products.cheaper"
                recs = [(r, {"shared": r["shared"]}) for r in ctx.run(query, sku=source["sku"], limit=MAX_LIST)]
            if not recs and mode in ("similar", "personal", "also_bought"):
                query = "products.similar"
                recs = [(r, {"shared": r["shared"]}) for r in
                        ctx.run(query, sku=source["sku"], line=line or "", band=0.35, limit=MAX_LIST)]
                mode = "similar"
            if not recs and mode == "similar" and source.get("category"):
                # nothing in the price band: the best rated of the same category
                query = "products.list_filtered"
                recs = [(r, {}) for r in ctx.run(query, brand=None, category=source["category"], attribute=None,
                                                 max_price=None, only_active=True, limit=MAX_LIST + 8)
                        if r["sku"] != source["sku"] and (not line or line not in (r.get("attr_values") or []))
                        and (r.get("stock") or 0) > 0]
        elif customer_id and (mode == "personal" or not (brand or category or budget)):
            query, mode = "products.personal", "personal"
            recs = [(r, {"because": r["because"]}) for r in ctx.run(query, customer_id=customer_id, limit=MAX_LIST)]
            if not recs:
                query = "products.personal_top_rated"
                recs = [(r, {"because": r["because"]}) for r in
                        ctx.run(query, customer_id=customer_id, limit=MAX_LIST)]
        elif brand or category or budget or attribute:
            query, mode = "products.list_filtered", "filtered"
            recs = [(r, {}) for r in ctx.run(query, brand=brand, category=category, attribute=attribute,
                                             max_price=budget, only_active=True, limit=MAX_LIST)
                    if (r.get("stock") or 0) > 0]
        else:
            return ask_for(RECOMMEND.name, 1.0, "PRODUCT", entities, "what_kind")
        facts: list[Fact] = []
        if source is not None:
            facts.append(product_fact(source, ("price", "currency")))
        for r, extra in recs[:MAX_LIST]:
            facts.append(recommendation_fact(r, fields, mode, **extra))
        status: Status = "ok" if recs else "not_found"
        listed = [product_ref(r) for r, _ in recs[:MAX_LIST]]
        mentioned = [product_ref(source)] if source is not None else []
        prompt = Recommendation(mode=mode, budget=budget)
        return Outcome(Retrieval(intent=RECOMMEND.name, status=status, facts=facts, query_name=query, prompt=prompt),
                       entities, mentioned=mentioned, listed=listed)

    def _compatible(self, ctx: Context, source: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        attrs = attributes(source)
        line = attrs.get("model_line")
        if not line:
            line = re.sub(r",.*$", "", source.get("name") or "")
            if source.get("brand") and line.lower().startswith(source["brand"].lower()):
                line = line[len(source["brand"]):].strip()
        target = f"{source.get('brand') or ''} {line}".strip()
        rows = ctx.run("products.compatible", target=target.lower(), target_raw=target, limit=50)
        out = []
        for r in rows:
            cw = str(attributes(r).get("compatible_with") or "")
            if cw.lower() == target.lower():
                out.append((r, {"compatible_with": cw}))
        return out

    # -- wording of this family's own prompts ----------------------------------------------------
    def suggest(self, r: Retrieval) -> list[str] | None:
        if r.status == "not_found" and isinstance(r.prompt, ProductNotFound):
            return ["Recommend a product", "Talk to a person"]
        if isinstance(r.prompt, FieldQuestion):
            # a field was answered: the product's other essentials, not accessories for a book
            return ["How much is it?", "Is it in stock?"]
        return None

    def write(self, r: Retrieval, pick: Picker) -> str | None:
        if r.status != "not_found":
            return None
        p = r.prompt
        if isinstance(p, MissingVariant):
            names = [display(f.name) for f in facts_of(r.facts, ProductFact)]
            return pick("nf_attr", (
                f"{named(p.line, capital=True)} doesn't come in {p.missing_attribute}. It's available as: "
                f"{join(names, 'or')}.",
                f"Sorry, there's no {p.missing_attribute} version of {named(p.line)}. "
                f"You can choose from: {join(names, 'or')}.",
            ))
        if isinstance(p, NoProducts) and (p.brand or p.category):
            what = " ".join(x for x in (p.attribute, p.brand, p.category) if x)
            return pick("nf_group", (f"I couldn't find any {what} products in our catalog.",
                                     f"We don't seem to have any {what} products at the moment."))
        if r.intent == RECOMMEND.name and (p is None or isinstance(p, Recommendation)):
            src = facts_of(r.facts, ProductFact)
            about = f" for {named(src[0].name)}" if src else ""
            mode = p.mode if p is not None else ""
            what = {"compatible": "compatible accessories", "also_bought": "products often bought together",
                    "cheaper": "cheaper alternatives", "personal": "personal recommendations"}.get(mode,
                                                                                              "recommendations")
            return f"I couldn't find {what}{about} right now."
        return None
