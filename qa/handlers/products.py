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

from nlu.types import Entity
from qa.facts import (
    ComparisonFact,
    Fact,
    ProductFact,
    ProductFields,
    ProductGroupFact,
    PromotionFact,
    RecommendationFact,
    WarrantyFact,
    facts_of,
    first_of,
)
from qa.handlers.base import Ask, Context, Handler, IntentSpec, Outcome
from qa.handlers.shared import (
    MAX_CANDIDATES,
    MAX_LIST,
    ask_for,
    attributes,
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
from qa.handlers.wording import Picker, attr_text, day, display, join, money, percent
from qa.prompts import MissingVariant, NoProducts, PromotionsAsOf, Recommendation
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
        text = pick("price", (f"The {display(p.name)} costs {m}.", f"The {display(p.name)} is {m}.",
                              f"It's {m} for the {display(p.name)}."))
        if p.status == "discontinued":
            text += " Note that it has been discontinued."
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
        if p.status == "discontinued":
            out.append(f"The {display(p.name)} has been discontinued" + (f"; {stock} are left." if stock else
                                                                     " and is no longer in stock."))
        elif stock <= 0:
            out.append(pick("oos_p", (f"Sorry, the {display(p.name)} is out of stock right now.",
                                      f"The {display(p.name)} is currently out of stock.")))
        elif stock <= 5:
            out.append(pick("low", (f"Yes, the {display(p.name)} is in stock, but only {stock} are left.",
                                    f"Hurry: only {stock} of the {display(p.name)} are left in stock.")))
        else:
            out.append(pick("in", (f"Yes, the {display(p.name)} is in stock ({stock} available).",
                                   f"Good news: we have {stock} of the {display(p.name)} in stock.",
                                   f"The {display(p.name)} is available; {stock} are in stock.")))
    return " ".join(out)


def write_details(r: Retrieval, pick: Picker) -> str:
    group = _group_intro(r, pick)
    if group:
        return group
    out = []
    for p in facts_of(r.facts, ProductFact):
        s = f"The {display(p.name)}" + (f", from our {p.category} range," if p.category else "")
        if p.price is not None:
            s += f" costs {money(p.price, p.currency)}."
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
        if p.rating is not None:
            s += f" Customers rate it {p.rating}/5."
        if p.warranty_months:
            s += f" Warranty: {p.warranty_months} months."
        if p.status == "discontinued":
            s += " It has been discontinued."
        out.append(s)
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
    text = head + "\n" + "\n".join(lines)
    c = first_of(r.facts, ComparisonFact) or ComparisonFact()
    if c.cheaper_name and c.price_difference:
        text += f"\nThe {display(c.cheaper_name)} is {money(c.price_difference, c.currency)} cheaper."
    if c.better_rated_name:
        text += f" The {display(c.better_rated_name)} has the better rating."
    return text


def write_warranty(r: Retrieval, pick: Picker) -> str:
    out = []
    for w in facts_of(r.facts, WarrantyFact):
        if w.source == "product":
            out.append(pick("w_p", (f"The {display(w.name)} comes with a {w.months}-month warranty.",
                                    f"The {display(w.name)} has its own {w.months}-month warranty.")))
        elif w.source == "policy":
            span = f"{w.months} months" if w.months is not None else "the period described"
            where = {"sku": "which applies to this product", "brand": f"which applies to {w.applies_to} products",
                     "category": f"which applies to {w.applies_to}",
                     "store": "which applies store-wide"}.get(w.scope or "", "")
            out.append(pick("w_pol", (
                f"The {display(w.name)} is covered for {span} under our \"{w.title}\" policy, {where}.",
                f"The {display(w.name)} has a warranty of {span} (\"{w.title}\", {where}).")))
            if w.text:
                out.append(w.text)
        else:
            out.append(f"I couldn't find a warranty for the {display(w.name)}.")
    return " ".join(out)


def write_promotions(r: Retrieval, pick: Picker) -> str:
    promos = facts_of(r.facts, PromotionFact)
    ps = facts_of(r.facts, ProductFact)
    about = f" on the {display(ps[0].name)}" if ps else ""
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
    name = display(src[0].name) if src else ""
    mode = r.prompt.mode if isinstance(r.prompt, Recommendation) else None
    if mode == "compatible":
        head = pick("rc_c", (f"These accessories are made for the {name}:", f"Accessories that fit the {name}:"))
    elif mode == "also_bought":
        head = pick("rc_a", (f"Customers who bought the {name} also bought:",
                             f"Often bought together with the {name}:"))
    elif mode == "cheaper":
        head = pick("rc_ch", (f"Cheaper alternatives to the {name}:", f"If the {name} is over budget, consider:"))
    elif mode == "personal":
        head = pick("rc_p", ("Based on your past orders, you might like:", "Picked for you from your order history:"))
    elif mode == "similar":
        head = pick("rc_s", (f"Products similar to the {name}:", f"If you like the {name}, have a look at:"))
    else:
        budget = r.prompt.budget if isinstance(r.prompt, Recommendation) else None
        head = pick("rc_f", ("Here are some good options:", "You might like these:"))
        if budget:
            head = pick("rc_b", (f"Good options up to {budget:,.2f}:", f"Within a budget of {budget:,.2f}:"))
    lines = [f"- {product_line(p, stock=True, rating=True)}" for p in recs]
    return head + "\n" + "\n".join(lines)


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
    cue=re.compile(r"\b(spec|specs|details?|features?|weigh|weight|battery|describe|dimensions?)\b"))
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
    intents = (PRICE, AVAILABILITY, DETAILS, COMPARE, RECOMMEND, WARRANTY, PROMOTIONS)
    queries = frozenset({
        "products.by_skus", "products.line_variants", "products.list_filtered",
        "products.summary_filtered", "products.similar", "products.cheaper", "products.compatible",
        "products.also_bought", "products.personal", "products.personal_top_rated",
        "products.promotions_for_product", "products.promotions_in_force", "policies.for_product",
    })

    # -- retrieval -------------------------------------------------------------------------------
    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        intent = ask.intent
        rows, entities, early = resolve_products(ctx, intent, ask.entities, clarify=self._clarify)
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
            if brand or category:
                return self._group(ctx, intent, entities, brand, category, attribute)
            return ask_for(intent, 1.0, "PRODUCT", entities, "which_product")
        row = rows[0]
        if attribute:
            picked = self._variant(ctx, intent, row, attribute, entities)
            if isinstance(picked, Outcome):
                return picked
            if picked["sku"] != row["sku"]:
                entities = entities + [Entity(type="PRODUCT", text=picked.get("name") or picked["sku"],
                                              node_id=picked["sku"], score=1.0, source="context")]
                entities = [e for e in entities if not (e.type == "PRODUCT" and e.node_id == row["sku"])]
            rows = [picked] + rows[1:]
        if intent == WARRANTY.name:
            return self._warranty(ctx, rows, entities)
        if intent == PROMOTIONS.name:
            return self._promotions_for(ctx, rows, entities)
        fields = _FIELDS.get(intent, ("price", "currency", "stock", "in_stock", "status"))
        facts: list[Fact] = [product_fact(r, fields) for r in rows]
        return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="products.by_skus"),
                       entities, mentioned=[product_ref(r) for r in rows])

    def clarify_mention(self, intent: str, confidence: float, entity: Entity, others: list[Entity],
                        ctx: Context) -> Outcome | None:
        return self._clarify(ctx, intent, confidence, entity, others)

    def _clarify(self, ctx: Context, intent: str, confidence: float, entity: Entity, others: list[Entity]
                 ) -> Outcome:
        cands = entity.candidates[:MAX_CANDIDATES]
        linked = [e for e in others if e.type == "PRODUCT" and e.node_id and e is not entity]
        if intent == COMPARE.name and entity.type == "PRODUCT" and 2 <= len(cands) <= 4 and not linked:
            # "compare the Nova 5 128 GB and 256 GB": the candidates are what is to be compared.
            rows = ctx.run("products.by_skus", skus=[c.node_id for c in cands])
            if len(rows) >= 2:
                order = [c.node_id for c in cands]
                return self._compare(sorted(rows, key=lambda r: order.index(r["sku"])), others)
        return clarify_mention(ctx, intent, confidence, entity, others)

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
    def write(self, r: Retrieval, pick: Picker) -> str | None:
        if r.status != "not_found":
            return None
        p = r.prompt
        if isinstance(p, MissingVariant):
            names = [display(f.name) for f in facts_of(r.facts, ProductFact)]
            return pick("nf_attr", (
                f"The {p.line} doesn't come in {p.missing_attribute}. It's available as: {join(names, 'or')}.",
                f"Sorry, there's no {p.missing_attribute} version of the {p.line}. "
                f"You can choose from: {join(names, 'or')}.",
            ))
        if isinstance(p, NoProducts) and (p.brand or p.category):
            what = " ".join(x for x in (p.attribute, p.brand, p.category) if x)
            return pick("nf_group", (f"I couldn't find any {what} products in our catalog.",
                                     f"We don't seem to have any {what} products at the moment."))
        if r.intent == RECOMMEND.name and (p is None or isinstance(p, Recommendation)):
            src = facts_of(r.facts, ProductFact)
            about = f" for the {display(src[0].name)}" if src else ""
            mode = p.mode if p is not None else ""
            what = {"compatible": "compatible accessories", "also_bought": "products often bought together",
                    "cheaper": "cheaper alternatives", "personal": "personal recommendations"}.get(mode,
                                                                                              "recommendations")
            return f"I couldn't find {what}{about} right now."
        return None
