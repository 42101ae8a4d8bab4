#!/usr/bin/env python3
"""Generate the bookshop's evaluation questions with gold answers computed from the shop's data.

Reads only the import files under data/ (DESIGN section 3) and today.txt; writes questions.jsonl and
dialogues.jsonl next to this script, then runs a self-check (see `self_check`): every expected
string must occur in the data files, be a value derived by one of the rules registered in
`Derived` (money format, date forms, return deadlines, ...), or be one of the generic answer words
in `WORDS`; ids, intents, covers, customers and order ownership are checked too.

Plain Python 3, standard library only. Run:  python3 eval/shops/bookshop/make_questions.py
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
TODAY = dt.date.fromisoformat((HERE / "today.txt").read_text().strip())
SEED = 4242

INTENTS = set("""product_price product_availability product_details product_compare product_recommend
product_warranty product_promotions track_order order_details cancel_order change_order
change_shipping_address set_up_shipping_address get_refund track_refund check_invoice get_invoice
payment_issue place_order check_refund_policy check_cancellation_fee delivery_options delivery_period
check_payment_methods create_account delete_account edit_account switch_account recover_password
registration_problems newsletter_subscription complaint review contact_customer_service
contact_human_agent greeting goodbye thanks affirm deny out_of_scope""".split())
COVERS = ("field", "context", "clarify", "orders", "policy", "signin", "handoff", "wording")

# ------------------------------------------------------------------------------------------------
# Generic answer words: alternatives a correct reply may use to state a fact that is not a value.
WORDS = {
    "in_stock": ["in stock", "available", "we have"],
    "not_in_stock": ["out of stock", "not in stock", "sold out", "unavailable", "not available"],
    "out_of_stock": ["out of stock", "not in stock", "sold out", "none in stock", "no copies", "0 in stock",
                     "currently unavailable", "not available", "unavailable"],
    "discontinued": ["discontinued", "no longer", "not available", "unavailable"],
    "clarify": ["which", "do you mean", "did you mean", "several", "more than one", "two"],
    "signin": ["sign in", "signed in", "sign-in", "log in", "logged in", "login", "log-in"],
    "handoff": ["agent", "person", "colleague", "human", "team", "transfer", "connect", "someone", "staff"],
    "yes": ["yes", "we do", "we ship", "we deliver", "we accept", "you can"],
    "no": ["don't", "do not", "not ", "no,", "no.", "unfortunately", "sorry", "only", "cannot", "can't"],
    "free": ["free", "no fee", "no charge", "nothing", "0.00 EUR", "no cost", "without charge", "at no cost"],
    "return_ok": ["yes", "can still", "still return", "still be returned", "eligible", "you can return",
                  "within", "until"],
    "return_over": ["no longer", "expired", "has passed", "passed", "ended", "closed", "not eligible", "cannot",
                    "can't", "too late", "outside", "over"],
    "no_returns": ["cannot be returned", "can't be returned", "no returns", "not returnable", "non-returnable",
                   "can not be returned", "no return", "not be returned", "cannot return", "can't return"],
    "return_instead": ["return", "delivered"],
    "expired": ["expired", "ended", "no longer", "not valid", "isn't valid", "is not valid", "over"],
    "status": {
        "placed": ["placed", "received", "processing", "being prepared", "not yet shipped", "not shipped yet",
                   "hasn't shipped", "has not shipped", "not been shipped"],
        "paid": ["paid", "processing", "being prepared", "not yet shipped", "not shipped yet", "hasn't shipped",
                 "has not shipped", "payment received", "not been shipped"],
        "shipped": ["shipped", "on its way", "on the way", "in transit", "dispatched", "sent"],
        "delivered": ["delivered"],
        "cancelled": ["cancelled", "canceled"],
        "returned": ["returned"],
    },
    "no_promo": ["no ", "not ", "don't", "none", "isn't", "aren't", "no discount", "no promotion"],
    "pickup": ["pickup", "pick up", "pick it up", "collect"],
}


def all_words() -> set[str]:
    out: set[str] = set()
    for v in WORDS.values():
        for x in (v.values() if isinstance(v, dict) else [v]):
            out.update(w.lower() for w in x)
    return out


class Derived:
    """Values computed from the data by a documented rule (see README 'Derived values')."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, value: str, rule: str) -> str:
        self.values.setdefault(value.lower(), rule)
        return value


D = Derived()
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def money(x) -> str:
    """DESIGN: money shows two decimals and the currency code."""
    v = Decimal(str(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return D.add(f"{v} EUR", "money: value from the data, two decimals + currency code")


def ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def date_forms(d: dt.date) -> list[str]:
    m, mon = MONTHS[d.month - 1], MONTHS[d.month - 1][:3]
    forms = [d.isoformat(), f"{d.day} {m} {d.year}", f"{m} {d.day}, {d.year}", f"{d.day} {mon} {d.year}",
             f"{mon} {d.day}, {d.year}", f"{ordinal(d.day)} {m} {d.year}", f"{m} {ordinal(d.day)}, {d.year}",
             f"{ordinal(d.day)} of {m} {d.year}"]
    for f in forms[1:]:
        D.add(f, "date: a date of the data (or derived from it) written out in words")
    return forms


def day(iso: str) -> dt.date:
    return dt.date.fromisoformat(iso[:10])


# ------------------------------------------------------------------------------------------------
def read_csv(name: str) -> list[dict]:
    with open(DATA / name, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_jsonl(name: str) -> list[dict]:
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


CATS = {r["name"]: r["parent"] for r in read_csv("categories.csv")}
BRANDS = {r["name"]: r for r in read_csv("brands.csv")}
SUPPLIERS = {r["supplier_id"]: r for r in read_csv("suppliers.csv")}
PRODUCTS = read_csv("products.csv")
P = {p["sku"]: p for p in PRODUCTS}
CUSTOMERS = {r["customer_id"]: r for r in read_csv("customers.csv")}
ORDERS = {r["order_id"]: r for r in read_csv("orders.csv")}
ITEMS: dict[str, list[dict]] = defaultdict(list)
for _r in read_csv("order_items.csv"):
    ITEMS[_r["order_id"]].append(_r)
POLICIES = read_jsonl("policies.jsonl")
SHIPPING = {r["name"]: r for r in read_csv("shipping_methods.csv")}
PAYMENTS = read_csv("payment_methods.csv")
PROMOS = read_csv("promotions.csv")
FAQS = read_jsonl("faqs.jsonl")
for _p in PRODUCTS:
    _p["attrs"] = json.loads(_p["attributes"]) if _p["attributes"].startswith("{") else {}


def ancestors(cat: str) -> list[str]:
    out = []
    while cat:
        out.append(cat)
        cat = CATS.get(cat, "")
    return out


def title_of(p: dict) -> str:
    """The product's title: its name without the '(Format)' suffix of a multi-edition title."""
    suf = f" ({p['format']})" if p["format"] else None
    return p["name"][: -len(suf)] if suf and p["name"].endswith(suf) else p["name"]


def short_title(p: dict) -> str:
    """A title as a person would write it in a reply: the part before a subtitle colon."""
    return title_of(p).split(":")[0].strip()


# ---- policy resolution (DESIGN section 3: sku > brand > category walking up > store-wide) ---------
def policy_for(ptype: str, p: dict | None) -> dict | None:
    cands = [x for x in POLICIES if x["type"] == ptype]

    def targets(x):
        return [t.strip() for t in (x.get("applies_to") or "").split(";") if t.strip()]

    if p is not None:
        for x in cands:
            if f"sku:{p['sku']}" in targets(x):
                return x
        for x in cands:
            if p["brand"] and f"brand:{p['brand']}" in targets(x):
                return x
        for cat in ancestors(p["category"]):
            for x in cands:
                if f"category:{cat}" in targets(x):
                    return x
    for x in cands:
        if not targets(x):
            return x
    return None


def return_days(p: dict) -> tuple[int, dict]:
    pol = policy_for("return", p)
    return int(pol["days"]), pol


def warranty(p: dict) -> tuple[str, list[str]]:
    """('product'|policy_id, alternatives a reply may use)."""
    if p["warranty_months"]:
        m = int(p["warranty_months"])
        alts = [f"{m} months", f"{m}-month", f"{m} month"]
        if m % 12 == 0:
            y = m // 12
            alts += [f"{y} year" if y == 1 else f"{y} years", {1: "one year", 2: "two years"}.get(y, f"{y} years")]
        for a in alts:
            D.add(a, "warranty: the product's warranty_months in months or years")
        return "product", alts
    pol = policy_for("warranty", p)
    d = int(pol["days"])
    alts = [f"{d} days"]
    if d % 365 == 0:
        y = d // 365
        alts += [f"{y} year" if y == 1 else f"{y} years", {1: "one year", 5: "five years"}.get(y, f"{y} years"),
                 f"{12 * y} months"]
    for a in alts:
        D.add(a, "warranty: the policy's days, also in years/months when a whole number of years")
    return pol["policy_id"], alts


def promos_for(p: dict, on: dt.date) -> list[dict]:
    out = []
    for pr in PROMOS:
        if not (day(pr["starts"]) <= on <= day(pr["ends"])):
            continue
        for t in pr["applies_to"].split(";"):
            kind, _, name = t.partition(":")
            if (kind == "category" and name in ancestors(p["category"])) or (kind == "brand" and name == p["brand"]) \
                    or (kind == "sku" and name == p["sku"]) or not t:
                out.append(pr)
    return out


# ---- mention resolution -------------------------------------------------------------------------
STOP = {"the", "a", "an", "of", "and", "one", "book", "books", "novel", "that", "this", "by", "copy", "edition",
        "version", "please", "pls", "my", "your", "you", "for", "new", "old", "thing"}
FMT_WORDS = {"paperback": "paperback", "hardcover": "hardcover", "hardback": "hardcover", "ebook": "e-book",
             "e-book": "e-book", "clothbound": "clothbound", "tie-in": "tie-in", "film": "film"}


def toks(s: str) -> list[str]:
    s = unicodedata.normalize("NFKD", s.lower())
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.replace("'", "").replace("’", "")
    return re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", s)


def stem(t: str) -> str:
    return t[:-1] if len(t) > 3 and t.endswith("s") and not t.endswith("ss") else t


def content(s: str) -> set[str]:
    return {stem(t) for t in toks(s) if t not in STOP and t not in FMT_WORDS}


def resolve(mention: str) -> list[dict]:
    """The products a careful reader would take `mention` to mean (several = ambiguous).

    A mention that is exactly a title (ignoring small words) means that title's editions; otherwise
    every product whose name and author words contain all of the mention's words. Format words
    (paperback, hardcover, e-book...) then narrow the editions."""
    words = content(mention)
    fmts = {FMT_WORDS[t] for t in toks(mention) if t in FMT_WORDS}
    exact = [p for p in PRODUCTS if content(title_of(p)) == words]
    cands = exact or [p for p in PRODUCTS if words <= content(p["name"]) | content(p["author"])
                      | content(p["brand"])]
    if fmts:
        narrowed = [p for p in cands if fmts <= {FMT_WORDS.get(t, t) for t in toks(p["format"])}]
        cands = narrowed or cands
    return cands


def typo(s: str, rng: random.Random) -> str:
    """One realistic slip in the longest word: swapped, dropped or doubled letter."""
    words = s.split()
    i = max(range(len(words)), key=lambda k: len(words[k]))
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    kind = rng.choice(["swap", "drop", "double"])
    if kind == "swap":
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind == "drop":
        w = w[:j] + w[j + 1:]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


def mentions(p: dict) -> list[str]:
    """Ways a shopper names `p` that resolve to it alone (or to editions of its title when the
    question's answer is the same for all of them; callers check)."""
    t = title_of(p)
    out = [t.lower(), t]
    if t.lower().startswith("the "):
        out.append(t[4:].lower())
    if ":" in t:
        out.append(t.split(":")[0].lower())
    if p["format"] and t != p["name"]:
        short = t.split(":")[0].lower()
        the = "" if short.split(" ", 1)[0] in ("the", "a", "an") else "the "
        out += [f"{t.lower()} {p['format'].lower()}", f"{the}{short} {p['format'].lower()}",
                f"{t.split(':')[0]} in {p['format'].lower()}"]
    return list(dict.fromkeys(out))


def short_mention(p: dict) -> str:
    """The shortest name that resolves to `p` alone (keeping a title's leading 'the')."""
    ms = unique_mentions(p)
    best = min(ms, key=len)
    t = title_of(p).split(":")[0].lower()
    return t if t.startswith("the ") and t in ms and len(t) <= len(best) + 4 else best


def only(mention: str, sku: str) -> str:
    """A hand-written mention, checked to resolve to exactly the product meant."""
    got = [c["sku"] for c in resolve(mention)]
    assert got == [sku], (mention, got)
    return mention


def unique_mentions(p: dict, same_title_ok: bool = False) -> list[str]:
    out = []
    for m in mentions(p):
        c = resolve(m)
        if c == [p] or (same_title_ok and all(title_of(x) == title_of(p) for x in c)):
            out.append(m)
    return out


# ------------------------------------------------------------------------------------------------
class Bank:
    def __init__(self) -> None:
        self.questions: list[dict] = []
        self.dialogues: list[dict] = []

    def q(self, text, intent, expect, covers, customer_id=None, source=None):
        self.questions.append({"id": f"bq{len(self.questions) + 1:03d}", "text": text, "customer_id": customer_id,
                               "intent": intent, "expect": norm_expect(expect), "covers": covers,
                               "source": source or {}})

    def d(self, turns, covers, customer_id=None, source=None):
        for t in turns:
            t["expect"] = norm_expect(t["expect"])
        self.dialogues.append({"id": f"bd{len(self.dialogues) + 1:03d}", "customer_id": customer_id,
                               "turns": turns, "covers": covers, "source": source or {}})


def norm_expect(e: dict) -> dict:
    out = {"contains": list(dict.fromkeys(e.get("contains", []))),
           "not_contains": list(dict.fromkeys(e.get("not_contains", []))),
           "clarify": bool(e.get("clarify", False)), "unknown": bool(e.get("unknown", False))}
    if e.get("contains_any"):
        out["contains_any"] = [list(dict.fromkeys(a)) for a in e["contains_any"]]
    return out


def turn(text, intent, expect, customer_id="__same__", note=None):
    t = {"text": text, "intent": intent, "expect": expect}
    if customer_id != "__same__":
        t["customer_id"] = customer_id
    if note:
        t["note"] = note
    return t


# ---- field answers --------------------------------------------------------------------------------
def availability(p: dict) -> str:
    if p["status"] == "discontinued":
        return "discontinued"
    if p["stock"] == "":
        return "no stock figure"
    return "in stock" if int(p["stock"]) > 0 else "out of stock"


def field_value(p: dict, field: str) -> str:
    """The raw value a field question asks for ('' = the data does not hold it)."""
    if field == "price":
        return p["price"]
    if field == "availability":
        return availability(p)
    if field == "stock":
        return p["stock"]
    if field == "publisher":
        return p["brand"]
    if field == "supplier":
        return SUPPLIERS[p["supplier_id"]]["name"] if p["supplier_id"] else ""
    if field == "rating":
        return p["rating"]
    return p.get(field, "") or p["attrs"].get(field, "")


def expect_for(p: dict, field: str) -> dict:
    v = field_value(p, field)
    if v == "":
        return {"unknown": True}
    if field == "price":
        return {"contains": [money(v)]}
    if field == "availability":
        if v == "in stock":
            return {"contains_any": [[p["stock"]] + WORDS["in_stock"]], "not_contains": WORDS["not_in_stock"]}
        if v == "out of stock":
            return {"contains_any": [WORDS["out_of_stock"]]}
        return {"contains_any": [WORDS["discontinued"]]}
    if field == "stock":
        if int(v) == 0:
            return {"contains_any": [WORDS["out_of_stock"] + ["0", "none", "no "]]}
        return {"contains": [v], "not_contains": WORDS["not_in_stock"]}
    if field == "author":
        return {"contains": [a.strip() for a in v.split(",")]}
    if field == "rating" and v.endswith(".0"):
        alts = [v, f"{v[:-2]} out of 5", f"{v[:-2]}/5", f"{v[:-2]} stars", f"{v}0"]
        for a in alts[1:]:
            D.add(a, "rating: a whole-number rating written out")
        return {"contains_any": [alts]}
    if field == "category":
        alt = v.replace("&", "and")
        if alt != v:
            D.add(alt, "category: '&' written as 'and'")
        return {"contains_any": [[v, alt]]}
    if field == "supplier":
        return {"contains": [v]}
    return {"contains": [v]}


# ------------------------------------------------------------------------------------------------
TEMPLATES = {
    "price": ("product_price", [
        "How much is {m}?", "what does {m} cost", "price of {m}?", "how much for {m}", "{m} price pls",
        "What's the price of {m}?", "how much do you charge for {m}?", "Could you tell me what {m} costs?",
        "what would {m} set me back?", "is {m} expensive? how much is it"]),
    "availability": ("product_availability", [
        "Is {m} in stock?", "do you have {m} in stock", "is {m} available right now?", "can I get {m} now?",
        "any copies of {m} left?", "{m} available?", "Do you currently have {m}?", "is {m} in stock at the moment"]),
    "stock": ("product_availability", [
        "How many copies of {m} do you have?", "how many copies of {m} are left in stock?",
        "how many of {m} do you have left"]),
    "author": ("product_details", [
        "Who wrote {m}?", "who is the author of {m}", "{m} - who's the author?", "who's {m} by?",
        "author of {m}?", "Can you tell me who wrote {m}?"]),
    "publisher": ("product_details", [
        "Who publishes {m}?", "which publisher is {m} from?", "who's the publisher of {m}",
        "what publisher did {m} come out with?", "publisher of {m}?"]),
    "category": ("product_details", [
        "What category is {m} in?", "which section would I find {m} in?", "what genre is {m} filed under?",
        "what kind of book is {m} - which category?"]),
    "supplier": ("product_details", [
        "Who supplies {m}?", "which distributor do you get {m} from?", "who is the supplier for {m}?",
        "where do you source {m} from - which supplier?"]),
    "pages": ("product_details", [
        "How many pages does {m} have?", "how long is {m}, page count?", "number of pages in {m}?",
        "how many pages is {m}", "{m} - how many pages?"]),
    "language": ("product_details", [
        "What language is {m} in?", "is {m} in english?", "which language is your {m} edition?",
        "what language is {m} written in"]),
    "isbn": ("product_details", [
        "What's the ISBN of {m}?", "isbn for {m}?", "can you give me the ISBN of {m}",
        "I need the ISBN number for {m}"]),
    "format": ("product_details", [
        "What format is {m}?", "is {m} a paperback or a hardcover?", "which format do you sell {m} in?",
        "what binding is {m}?"]),
    "publication_year": ("product_details", [
        "When was {m} first published?", "what year did {m} come out?", "publication year of {m}?",
        "how old is {m}, what year was it published"]),
    "pack_size": ("product_details", [
        "How many are in a pack of {m}?", "how many come in {m}?", "what's the pack size of {m}?",
        "how many pieces in {m}"]),
    "origin": ("product_details", [
        "Where is {m} made?", "what country is {m} made in?", "country of origin of {m}?",
        "where does {m} come from, which country makes it?"]),
    "rating": ("product_details", [
        "How is {m} rated?", "what's the average rating of {m}?", "is {m} well reviewed? what's its rating",
        "rating of {m}?"]),
}


def pick(rng, seq):
    return seq[rng.randrange(len(seq))]


def ask(bank: Bank, rng, p: dict, field: str, covers="field", mention=None, wording=None, same_title_ok=True):
    intent, tmpls = TEMPLATES[field]
    ms = unique_mentions(p, same_title_ok=same_title_ok)
    if field == "format":  # a mention that names the format would give the answer away
        ms = [x for x in ms if not set(toks(x)) & set(FMT_WORDS)] or ms
    # shorter names are what people type; the full catalogue name now and then
    ms = sorted(ms, key=len)[: max(2, len(ms) // 2 + 1)] if rng.random() < 0.75 else ms
    m = mention or pick(rng, ms)
    cands = resolve(m)
    vals = {field_value(c, field) for c in cands}
    assert p in cands and len(vals) == 1, (m, field, [c["sku"] for c in cands])
    text = wording(m) if wording else pick(rng, tmpls).format(m=m)
    if rng.random() < 0.25 and not wording:
        text = text.lower()
    bank.q(text, intent, expect_for(p, field), covers,
           source={"skus": [c["sku"] for c in cands], "field": field, "value": field_value(p, field)})


# ================================================================================================
def singles(bank: Bank, rng: random.Random) -> None:
    books = [p for p in PRODUCTS if p["sku"].startswith("BK-")]
    phys_books = [p for p in books if p["format"] != "E-book"]
    others = [p for p in PRODUCTS if not p["sku"].startswith("BK-")]

    def sample(pool, n, cond=lambda p: True):
        pool = [p for p in pool if cond(p) and unique_mentions(p, same_title_ok=True)]
        return rng.sample(pool, min(n, len(pool)))

    # -- (1) any field -------------------------------------------------------------------------
    for p in sample(books, 12) + sample(others, 7, lambda p: p["category"] not in ("Gift Cards",)):
        ok = {field_value(c, "price") for c in resolve(unique_mentions(p, True)[0])}
        if len(ok) == 1:
            ask(bank, rng, p, "price")
    for p in sample(phys_books, 5, lambda p: availability(p) == "in stock") + \
            sample(phys_books, 4, lambda p: availability(p) == "out of stock") + \
            sample(others, 2, lambda p: availability(p) == "in stock") + \
            sample(others, 2, lambda p: availability(p) == "out of stock") + \
            [p for p in PRODUCTS if p["status"] == "discontinued"]:
        try:
            ask(bank, rng, p, "availability", same_title_ok=False)
        except AssertionError:
            continue
    for p in sample(phys_books, 3, lambda p: availability(p) == "in stock") + sample(others, 1, lambda p: availability(p) == "in stock"):
        try:
            ask(bank, rng, p, "stock", same_title_ok=False)
        except AssertionError:
            continue
    for field, n in (("author", 8), ("publisher", 6), ("category", 4), ("supplier", 5), ("pages", 5),
                     ("language", 3), ("isbn", 4), ("format", 3), ("publication_year", 5), ("rating", 3)):
        pool = books if field != "supplier" else PRODUCTS
        done = 0
        for p in rng.sample(pool, len(pool)):
            if done >= n:
                break
            if field_value(p, field) == "":
                continue
            try:
                ask(bank, rng, p, field, same_title_ok=True)
                done += 1
            except (AssertionError, IndexError):
                continue
    # foreign-language editions (language question asked in a way that expects the non-English answer)
    for p in [x for x in books if x["language"] not in ("English", "")][:4]:
        ask(bank, rng, p, "language")
    for field, pool in (("pack_size", [p for p in others if p["pack_size"] not in ("", "1")]),
                        ("origin", [p for p in others if p["origin"]])):
        for p in rng.sample(pool, 4):
            ask(bank, rng, p, field)
    # supplier with phone number
    p = rng.choice([x for x in others if unique_mentions(x)])
    sup = SUPPLIERS[p["supplier_id"]]
    m = unique_mentions(p)[0]
    bank.q(f"who supplies the {m} and what's their phone number?", "product_details",
           {"contains": [sup["name"], sup["phone"]]}, "field", source={"skus": [p["sku"]], "field": "supplier"})
    # unknown: a field the data lacks for that product
    unknown_cases = [(p, "language") for p in books if p["language"] == "" and p["format"] != "E-book"]
    unknown_cases += [(p, "isbn") for p in books if p["isbn"] == "" and p["format"] == "Paperback"][:2]
    unknown_cases += [(P["BK-0013-HC"], "isbn")]
    unknown_cases += [(p, "pages") for p in books if p["pages"] == "" and p["format"] != "E-book"]
    unknown_cases += [(p, "origin") for p in others if p["origin"] == "" and p["category"] != "Gift Cards"]
    for p, field in unknown_cases:
        ask(bank, rng, p, field, same_title_ok=False)
    p = rng.choice([b for b in phys_books if unique_mentions(b)])  # books carry no country of origin
    bank.q(f"which country was {unique_mentions(p)[0]} printed in?", "product_details", {"unknown": True}, "field",
           source={"skus": [p["sku"]], "field": "origin", "value": ""})
    # facts no product has at all
    for p, text in ((rng.choice(phys_books), "how much does {m} weigh?"),
                    (rng.choice(phys_books), "what are the dimensions of {m}?"),
                    (P["BK-0058-PB"], "who did the illustrations in {m}?"),
                    (P["ST-NB-01"], "what paper weight (gsm) is the {m}?")):
        m = unique_mentions(p, True)[0]
        bank.q(text.format(m=m), "product_details", {"unknown": True}, "field",
               source={"skus": [p["sku"]], "field": "(not in data)"})
    # warranty (product field or policy)
    for sku in ("ST-PP-01", "GF-BA-01", "GF-BA-02", "BK-0040-PB", "BK-0018-PB", "ST-NB-03"):
        p = P[sku]
        src, alts = warranty(p)
        m = unique_mentions(p, True)[0]
        text = pick(rng, ["What warranty does {m} have?", "is there a warranty on the {m}?",
                          "how long is the guarantee on {m}?", "if {m} falls apart, how long am I covered?"])
        bank.q(text.format(m=m), "product_warranty", {"contains_any": [alts]}, "policy",
               source={"skus": [sku], "rule": "warranty", "from": src})
    # promotions for a product (valid today)
    for sku in ("BK-0013-PB", "ST-NB-04", "BK-0058-PB", "BK-0069-PB"):
        p = P[sku]
        prs = promos_for(p, TODAY)
        m = unique_mentions(p, True)[0]
        text = pick(rng, ["Is there any discount on {m} right now?", "any promo code for {m}?",
                          "is {m} on sale at the moment?", "do you have a coupon I can use for {m}?"])
        if prs:
            exp = {"contains": [pr["code"] for pr in prs]}
        else:
            exp = {"contains_any": [WORDS["no_promo"]],
                   "not_contains": [pr["code"] for pr in PROMOS]}
        bank.q(text.format(m=m), "product_promotions", exp, "field",
               source={"skus": [sku], "rule": "promotion valid today via category ancestors or brand",
                       "codes": [pr["code"] for pr in prs]})

    # -- (3) clarification and shared answers ----------------------------------------------------
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in PRODUCTS:
        groups[title_of(p)].append(p)
    multi = {t: g for t, g in groups.items() if len(g) > 1}
    for t, g in sorted(multi.items()):
        m = pick(rng, [x for x in (t.lower(), t.split(":")[0].lower(), t) if sorted(map(id, resolve(x))) ==
                       sorted(map(id, g))] or [t.lower()])
        cands = resolve(m)
        prices = {c["price"] for c in cands}
        text = pick(rng, TEMPLATES["price"][1]).format(m=m)
        if len(prices) > 1:
            bank.q(text, "product_price", {"clarify": True, "contains_any": [[c["format"] for c in cands]]},
                   "clarify", source={"skus": [c["sku"] for c in cands], "field": "price",
                                      "values": sorted(prices)})
        else:
            bank.q(text, "product_price", {"contains": [money(cands[0]["price"])]}, "clarify",
                   source={"skus": [c["sku"] for c in cands], "field": "price", "values": sorted(prices),
                           "rule": "editions share the price: answer at once"})
    # editions share the author (answer at once) but not the page count (clarify)
    for m, field in (("the hobbit", "pages"), ("the hobbit", "author"), ("dune", "publication_year"),
                     ("pride and prejudice", "pages"), ("murder on the orient express", "stock")):
        cands = resolve(m)
        vals = {field_value(c, field) for c in cands}
        intent, tmpls = TEMPLATES[field]
        text = pick(rng, tmpls).format(m=m)
        if len(vals) > 1:
            exp = {"clarify": True, "contains_any": [[c["format"] for c in cands]]}
        else:
            exp = expect_for(cands[0], field)
        bank.q(text, intent, exp, "clarify", source={"skus": [c["sku"] for c in cands], "field": field,
                                                     "values": sorted(vals)})
    # partial names that fit several different products
    for m, field in (("that agatha christie one", "price"), ("the harry potter book", "price"),
                     ("the reading light", "price"), ("the literary calendar", "availability"),
                     ("the kahneman book", "price"), ("the lumen notebook", "price"),
                     ("the roald dahl one", "pages"), ("the orwell one", "publisher")):
        cands = resolve(m)
        vals = {field_value(c, field) for c in cands}
        assert len(cands) > 1 and len(vals) > 1, (m, [c["sku"] for c in cands])
        intent, tmpls = TEMPLATES[field]
        bank.q(pick(rng, tmpls).format(m=m), intent, {"clarify": True}, "clarify",
               source={"skus": [c["sku"] for c in cands], "field": field, "values": sorted(vals)})
    # partial names that fit several products with the same answer: answer at once
    for m, field in (("the lumen a5 notebook", "price"), ("the tolkien book", "publisher"),
                     ("dune", "author"), ("the hobbit", "language")):
        cands = resolve(m)
        vals = {field_value(c, field) for c in cands}
        assert len(vals) == 1, (m, vals)
        intent, tmpls = TEMPLATES[field]
        bank.q(pick(rng, tmpls).format(m=m), intent, expect_for(cands[0], field), "clarify",
               source={"skus": [c["sku"] for c in cands], "field": field, "values": sorted(vals),
                       "rule": "several products, one answer: answer at once"})

    # -- wording: typos, lower case, shorthand, chatter ---------------------------------------------
    wording_cases = [
        ("price", lambda m: f"hw much is {m}"), ("availability", lambda m: f"u got {m} in stock??"),
        ("author", lambda m: f"who wrote {m} again, i forgot"), ("price", lambda m: f"{m} how much €"),
        ("pages", lambda m: f"pages {m}"), ("availability", lambda m: f"hi! quick one - is {m} still available? thx"),
        ("price", lambda m: f"PRICE OF {m.upper()}"), ("publication_year", lambda m: f"wat year is {m} from"),
        ("publisher", lambda m: f"pubisher of {m}??"), ("price", lambda m: f"my daughter wants {m} for her birthday, how much is it?"),
        ("availability", lambda m: f"is {m} back in stock yet"), ("author", lambda m: f"{m} author"),
    ]
    pool = [p for p in phys_books if unique_mentions(p, True)]
    for field, w in wording_cases:
        p = rng.choice(pool)
        if field == "availability" and "back in stock" in w("x"):
            p = rng.choice([x for x in pool if availability(x) == "out of stock" and unique_mentions(x)])
        base = pick(rng, unique_mentions(p, same_title_ok=field not in ("availability",)) or unique_mentions(p, True))
        m = typo(base, rng) if rng.random() < 0.6 and len(base) > 6 else base.lower()
        cands = resolve(base)
        if len({field_value(c, field) for c in cands}) != 1:
            continue
        bank.q(w(m), TEMPLATES[field][0], expect_for(p, field), "wording",
               source={"skus": [c["sku"] for c in cands], "field": field, "mention_before_typo": base})

    # -- (4) orders ---------------------------------------------------------------------------------
    orders_singles(bank, rng)
    # -- (5) policies -------------------------------------------------------------------------------
    policy_singles(bank, rng)
    # -- (6) hand-off -------------------------------------------------------------------------------
    for text in ("I want to talk to a person", "can i speak to a real human pls",
                 "Agent please. This isn't helping.", "get me someone from customer service, a human",
                 "transfer me to a live agent", "Is there a real person I can chat with instead?"):
        bank.q(text, "contact_human_agent", {"contains_any": [WORDS["handoff"]]}, "handoff",
               source={"rule": "hand-off: reply offers or confirms a human agent"})


# ---- orders ------------------------------------------------------------------------------------------
def order_fact_strings(o: dict) -> list[str]:
    """Details of an order that must not reach anyone but its owner."""
    out = [money(o["total"])]
    if o["tracking_number"]:
        out.append(o["tracking_number"])
    if o["ship_to"] and "@" not in o["ship_to"] and not o["ship_to"].startswith("Store pickup"):
        out.append(next(part.strip() for part in o["ship_to"].split(",") if re.search(r"\d", part)))
    for it in ITEMS[o["order_id"]]:
        out.append(short_title(P[it["sku"]]))
    return out


def order_return(o: dict):
    """(days, policy, start date, deadline) when every item of the order has the same return window."""
    pols = {return_days(P[it["sku"]])[1]["policy_id"] for it in ITEMS[o["order_id"]]}
    if len(pols) != 1 or not o["delivered_at"]:
        return None
    days, pol = return_days(P[ITEMS[o["order_id"]][0]["sku"]])
    start = day(o["delivered_at"])
    deadline = start + dt.timedelta(days=days)
    D.add(deadline.isoformat(), "return deadline: delivered_at date + the applicable return policy's days")
    D.add((deadline - dt.timedelta(days=1)).isoformat(), "return deadline, counting the delivery day as day 1")
    return days, pol, start, deadline


def deadline_forms(deadline: dt.date) -> list[str]:
    """A reply may count the delivery day as day 1 (deadline one day earlier): both are accepted."""
    return date_forms(deadline) + date_forms(deadline - dt.timedelta(days=1))


def status_expect(o: dict) -> dict:
    e = {"contains_any": [WORDS["status"][o["status"]]]}
    if o["status"] == "delivered":
        e["contains_any"].append(date_forms(day(o["delivered_at"])))
    if o["status"] == "shipped":
        e["contains"] = [o["carrier"]]
        e["contains_any"].append(date_forms(day(o["shipped_at"])))
    return e


def orders_singles(bank: Bank, rng: random.Random) -> None:
    by_cust: dict[str, list[dict]] = defaultdict(list)
    for o in ORDERS.values():
        by_cust[o["customer_id"]].append(o)
    used: set[str] = set()

    def take(cond, n):
        pool = [o for o in ORDERS.values() if cond(o) and o["order_id"] not in used]
        got = rng.sample(pool, min(n, len(pool)))
        used.update(o["order_id"] for o in got)
        return got

    status_t = ["where is my order {o}?", "what's the status of order {o}", "order {o} status pls",
                "Has my order #{o} shipped yet?", "any update on {o}?", "can you check order number {o} for me"]
    for o in take(lambda o: o["status"] in ("placed", "paid"), 3) + take(lambda o: o["status"] == "delivered", 3) \
            + take(lambda o: o["status"] == "cancelled", 1) + take(lambda o: o["status"] == "returned", 1):
        bank.q(pick(rng, status_t).format(o=o["order_id"]), "track_order", status_expect(o), "orders",
               o["customer_id"], source={"order": o["order_id"], "status": o["status"]})
    # shipped, no delivery date: shipped-on date with carrier (the oldest parcel first: it never arrived)
    oldest = min((o for o in ORDERS.values() if o["status"] == "shipped"), key=lambda o: o["shipped_at"])
    used.add(oldest["order_id"])
    for o in [oldest] + take(lambda o: o["status"] == "shipped", 4):
        text = pick(rng, ["when will order {o} arrive?", "where's my parcel for order {o}?",
                          "has {o} been delivered yet?", "order {o} still hasn't arrived, where is it?",
                          "track order {o}"]).format(o=o["order_id"])
        bank.q(text, "track_order", status_expect(o), "orders", o["customer_id"],
               source={"order": o["order_id"], "status": o["status"], "rule": "shipped: carrier + shipped date"})
    # tracking number
    for o in take(lambda o: o["status"] == "shipped", 2):
        bank.q(f"what's the tracking number for order {o['order_id']}?", "track_order",
               {"contains": [o["tracking_number"], o["carrier"]]}, "orders", o["customer_id"],
               source={"order": o["order_id"]})
    # items
    for o in take(lambda o: len(ITEMS[o["order_id"]]) >= 2, 4):
        all_books = all(i["sku"].startswith("BK-") for i in ITEMS[o["order_id"]])
        text = pick(rng, ["what did I order in {o}?", "items in order {o}?", "can you list what's in my order {o}"]
                    + (["which books are in order {o}?"] if all_books else [])).format(o=o["order_id"])
        bank.q(text, "order_details", {"contains": [short_title(P[i["sku"]]) for i in ITEMS[o["order_id"]]]},
               "orders", o["customer_id"], source={"order": o["order_id"], "skus": [i["sku"] for i in ITEMS[o["order_id"]]]})
    # total
    for o in take(lambda o: o["status"] != "cancelled", 4):
        text = pick(rng, ["how much did I pay for order {o}?", "what was the total of {o}?",
                          "order {o} total?", "what did order {o} cost me in total"]).format(o=o["order_id"])
        bank.q(text, "order_details", {"contains": [money(o["total"])]}, "orders", o["customer_id"],
               source={"order": o["order_id"]})
    # payment method used
    for o in take(lambda o: o["payment_method"] != "", 2):
        bank.q(f"how did I pay for order {o['order_id']}?", "order_details", {"contains": [o["payment_method"]]},
               "orders", o["customer_id"], source={"order": o["order_id"]})
    # can I return it?
    ret = [o for o in ORDERS.values() if o["status"] == "delivered" and order_return(o)]
    # both ways of counting (delivery day as day 0 or day 1) must agree that the window is still open
    eligible = [o for o in ret if order_return(o)[3] - dt.timedelta(days=1) >= TODAY and order_return(o)[0] > 0]
    over = [o for o in ret if order_return(o)[3] < TODAY and order_return(o)[0] > 0
            and (TODAY - order_return(o)[3]).days < 60]
    none = [o for o in ret if order_return(o)[0] == 0]
    chosen = []

    def pol(o):
        return order_return(o)[1]["policy_id"]

    # the windows that ended most recently are the telling ones; a mix of store-wide and specific policies
    over = sorted(over, key=lambda o: order_return(o)[3], reverse=True)
    eligible = sorted(eligible, key=lambda o: order_return(o)[3])
    for pool, want in ((eligible, {"POL-RET-STAT": 1, "POL-RET-ACORN": 1, "POL-RET-STORE": 2}),
                       (over, {"POL-RET-STAT": 1, "POL-RET-STORE": 2}),
                       (none, {"POL-RET-GIFTCARD": 1, "POL-RET-EBOOK": 1})):
        for o in pool:
            if want.get(pol(o), 0) > 0 and o["order_id"] not in used:
                chosen.append(o)
                used.add(o["order_id"])
                want[pol(o)] -= 1
    for o in chosen:
        used.add(o["order_id"])
        days, pol, start, deadline = order_return(o)
        text = pick(rng, ["can I still return order {o}?", "is it too late to return {o}?",
                          "I want to send back order {o} - am I still within the return window?",
                          "until when can I return my order {o}?"]).format(o=o["order_id"])
        if days == 0:
            exp = {"contains_any": [WORDS["no_returns"]]}
        elif deadline >= TODAY:
            exp = {"contains_any": [WORDS["return_ok"], deadline_forms(deadline)]}
        else:
            exp = {"contains_any": [WORDS["return_over"], deadline_forms(deadline)]}
        bank.q(text, "check_refund_policy", exp, "orders", o["customer_id"],
               source={"order": o["order_id"], "policy": pol["policy_id"], "days": days,
                       "delivered": start.isoformat(), "deadline": deadline.isoformat(),
                       "rule": "eligible iff today <= delivered date + policy days"})
    # shipped but not delivered: the window has not started
    for o in take(lambda o: o["status"] == "shipped" and ITEMS[o["order_id"]] and len(
            {return_days(P[i["sku"]])[0] for i in ITEMS[o["order_id"]]}) == 1, 1):
        days = return_days(P[ITEMS[o["order_id"]][0]["sku"]])[0]
        D.add(f"{days} days", "return window in days")
        bank.q(f"if I don't like what's in order {o['order_id']}, can I return it?", "check_refund_policy",
               {"contains": [f"{days} days"]}, "orders", o["customer_id"],
               source={"order": o["order_id"], "rule": "not delivered yet: window of the policy counts from delivery"})
    # cancellation cost
    fee = next(x for x in POLICIES if x["type"] == "cancellation")["fee"]
    for o in take(lambda o: o["status"] == "shipped", 2) + take(lambda o: o["status"] in ("placed", "paid"), 2) \
            + take(lambda o: o["status"] == "delivered", 1):
        text = pick(rng, ["how much does it cost to cancel order {o}?", "is there a fee if I cancel {o}?",
                          "what would cancelling order {o} cost me?"]).format(o=o["order_id"])
        if o["status"] == "shipped":
            exp = {"contains": [money(fee)]}
        elif o["status"] in ("placed", "paid"):
            exp = {"contains_any": [WORDS["free"]], "not_contains": [money(fee)]}
        else:
            exp = {"contains_any": [WORDS["return_instead"]]}
        bank.q(text, "check_cancellation_fee", exp, "orders", o["customer_id"],
               source={"order": o["order_id"], "status": o["status"], "policy_fee": fee,
                       "rule": "placed/paid: free; shipped: policy fee; delivered: return instead"})
    # another customer's order id: nothing of it may show
    for _ in range(3):
        asker = rng.choice([c for c in by_cust if len(by_cust[c]) >= 2])
        own = by_cust[asker]
        own_strings = {s for o in own for s in order_fact_strings(o)}
        other = rng.choice([o for o in ORDERS.values() if o["customer_id"] != asker and o["status"] != "cancelled"
                            and not (set(order_fact_strings(o)) & own_strings)])
        text = pick(rng, ["where is my order {o}?", "what's in order {o}?", "how much was order {o}?"])
        bank.q(text.format(o=other["order_id"]), "track_order" if "where" in text else "order_details",
               {"not_contains": order_fact_strings(other)}, "orders", asker,
               source={"order": other["order_id"], "owner": other["customer_id"],
                       "rule": "not the asker's order: same reply as an unknown id"})
    # signed out: ask to sign in, show nothing
    for o in rng.sample([o for o in ORDERS.values() if o["status"] != "cancelled"], 5):
        text = pick(rng, ["where is my order {o}?", "status of order {o}?", "what's in my order {o}",
                          "can I return order {o}?", "did order {o} ship?"]).format(o=o["order_id"])
        intent = "check_refund_policy" if "return" in text else "order_details" if "what's in" in text \
            else "track_order"
        bank.q(text, intent, {"contains_any": [WORDS["signin"]], "not_contains": order_fact_strings(o)}, "signin",
               None, source={"order": o["order_id"], "rule": "anonymous: sign-in reply"})
    bank.q("where's my order?", "track_order", {"contains_any": [WORDS["signin"]]}, "signin", None,
           source={"rule": "anonymous, no id: sign-in reply"})


# ---- policies ---------------------------------------------------------------------------------------
def policy_singles(bank: Bank, rng: random.Random) -> None:
    store_ret = policy_for("return", None)
    D.add(f"{store_ret['days']} days", "return window in days")
    bank.q("what's your return policy?", "check_refund_policy", {"contains": [f"{store_ret['days']} days"]},
           "policy", source={"policy": store_ret["policy_id"]})
    for sku, text in (("ST-NB-02", "how long do I have to return a {m}?"),
                      ("ST-CL-01", "can I return the {m} if I change my mind? how many days?"),
                      ("BK-0006-PB", "how many days do I have to return {m}?"),
                      ("BK-0056-PB", "return window for {m}?"),
                      ("BK-0058-PB", "if my kid doesn't like {m}, how long can we return it?"),
                      ("GF-BM-03", "can I return the {m} and how long do I have?"),
                      ("BK-0072-EB", "can I return the {m} after downloading it?"),
                      ("GF-GC-01", "can a {m} be returned?")):
        p = P[sku]
        days, pol = return_days(p)
        m = unique_mentions(p, False)[0] if unique_mentions(p, False) else p["name"].lower()
        if days == 0:
            exp = {"contains_any": [WORDS["no_returns"]]}
        else:
            D.add(f"{days} days", "return window in days")
            exp = {"contains": [f"{days} days"]}
            if days == 30:
                exp["not_contains"] = ["14 days", "60 days"]
            if days == 60:
                exp["not_contains"] = ["14 days"]
        bank.q(text.format(m=m), "check_refund_policy", exp, "policy",
               source={"skus": [sku], "policy": pol["policy_id"], "days": days,
                       "rule": "return policy by specificity: sku > brand > category (up the tree) > store"})
    refund = policy_for("refund", None)
    D.add(f"{refund['days']} days", "refund period in days")
    bank.q("once you get my return, how long until I see the money?", "check_refund_policy",
           {"contains": [f"{refund['days']} days"]}, "policy", source={"policy": refund["policy_id"]})
    # cancellation
    canc = policy_for("cancellation", None)
    bank.q("is there a cancellation fee?", "check_cancellation_fee", {"contains": [money(canc["fee"])]}, "policy",
           source={"policy": canc["policy_id"]})
    bank.q("what does it cost to cancel an order that hasn't shipped yet?", "check_cancellation_fee",
           {"contains_any": [WORDS["free"]], "not_contains": [money(canc["fee"])]}, "policy",
           source={"policy": canc["policy_id"], "rule": "before shipping: free (policy text)"})
    # shipping: where to
    regions = {r: name for name, m in SHIPPING.items() for r in m["regions"].split(";")}
    for country in ("Austria", "Ireland", "Switzerland", "United States", "Portugal"):
        methods = [n for n, m in SHIPPING.items() if country in m["regions"].split(";")]
        bank.q(pick(rng, ["do you ship to {c}?", "Can you deliver to {c}?", "shipping to {c} possible?",
                          "I live in {c}, can I order from you?"]).format(c=country), "delivery_options",
               {"contains_any": [WORDS["yes"] + methods]}, "policy",
               source={"country": country, "methods": methods})
    for country in ("Canada", "Australia", "Japan"):
        assert country not in regions
        bank.q(pick(rng, ["do you ship to {c}?", "can I get books delivered to {c}?",
                          "Do you deliver to {c}?"]).format(c=country), "delivery_options",
               {"contains_any": [WORDS["no"]]}, "policy",
               source={"country": country, "rule": "not in any shipping method's regions"})
    # costs, thresholds, periods
    exp_ = SHIPPING["Express"]
    bank.q("how much is express shipping?", "delivery_options", {"contains": [money(exp_["cost"])]}, "policy",
           source={"method": "Express"})
    std = SHIPPING["Standard"]
    bank.q("from what amount is shipping free?", "delivery_options", {"contains": [money(std["free_over"])]},
           "policy", source={"method": "Standard"})
    intl = SHIPPING["International"]
    bank.q("what does shipping to the UK cost?", "delivery_options",
           {"contains": [money(intl["cost"])]}, "policy", source={"method": "International"})
    bank.q("is shipping to norway ever free?", "delivery_options", {"contains": [money(intl["free_over"])]},
           "policy", source={"method": "International"})

    def period(m):
        a, b = m["min_days"], m["max_days"]
        alts = [f"{a}-{b}", f"{a} to {b}", f"{a}–{b}", f"{a} and {b}", f"{a} - {b}"]
        for x in alts:
            D.add(x, "delivery period: min_days to max_days")
        return alts

    bank.q("how long does standard delivery take?", "delivery_period", {"contains_any": [period(std)]}, "policy",
           source={"method": "Standard"})
    bank.q("if I order today with express, how many days until it arrives?", "delivery_period",
           {"contains_any": [period(exp_)]}, "policy", source={"method": "Express"})
    bank.q("how long does delivery to sweden take?", "delivery_period", {"contains_any": [period(intl)]},
           "policy", source={"method": "International", "country": "Sweden"})
    bank.q("how long does it take to ship to ireland", "delivery_period", {"contains_any": [period(std)]},
           "policy", source={"method": "Standard", "country": "Ireland"})
    bank.q("what delivery options do you have?", "delivery_options",
           {"contains": list(SHIPPING)}, "policy", source={"rule": "all shipping methods"})
    bank.q("can I pick up my order in your shop instead?", "delivery_options",
           {"contains_any": [WORDS["pickup"]]}, "policy", source={"method": "Store pickup"})
    # payment
    bank.q("what payment methods do you accept?", "check_payment_methods",
           {"contains": ["PayPal", "Apple Pay"], "contains_any": [["credit card", "Credit card", "Visa"],
                                                                 ["SEPA", "bank transfer"]]}, "policy",
           source={"rule": "payment_methods.csv"})
    bank.q("can I pay with paypal?", "check_payment_methods", {"contains_any": [WORDS["yes"] + ["PayPal"]]},
           "policy", source={"rule": "PayPal in payment_methods.csv"})
    bank.q("do you take bitcoin?", "check_payment_methods", {"contains_any": [WORDS["no"]]}, "policy",
           source={"rule": "not in payment_methods.csv"})
    # promotions
    today_codes = [pr for pr in PROMOS if day(pr["starts"]) <= TODAY <= day(pr["ends"])]
    bank.q("are there any promo codes at the moment?", "product_promotions",
           {"contains": [pr["code"] for pr in today_codes]}, "policy",
           source={"rule": "promotions valid today", "codes": [pr["code"] for pr in today_codes]})
    old = [pr for pr in PROMOS if day(pr["ends"]) < TODAY][0]
    bank.q(f"can I still use the code {old['code']}?", "product_promotions",
           {"contains_any": [WORDS["expired"] + date_forms(day(old["ends"]))]}, "policy",
           source={"code": old["code"], "ends": old["ends"]})
    # FAQ-backed store procedures
    faq = {f["question"]: f for f in FAQS}

    def faq_q(text, intent, question, contains):
        ans = faq[question]["answer"]
        for c in contains:
            assert c.lower() in ans.lower(), (c, question)
        bank.q(text, intent, {"contains": contains}, "policy", source={"faq": question})

    faq_q("do you gift wrap? how much?", "place_order", "Do you offer gift wrapping?", ["3.00 EUR"])
    faq_q("what file format are your ebooks", "product_details", "How do I download an e-book I bought?", ["EPUB"])
    faq_q("how long is a gift card valid for?", "check_payment_methods", "How long are gift cards valid?", ["3 years"])
    faq_q("where is your shop? opening hours?", "contact_customer_service", "Where is your shop?",
          ["Ehrenstrasse 12", "10:00"])
    faq_q("I forgot my password", "recover_password", "I forgot my password, what do I do?", ["24 hours"])
    faq_q("do schools get a discount?", "product_promotions", "Do you give discounts to schools and reading groups?",
          ["10%"])


# ================================================================================================
def dialogues(bank: Bank, rng: random.Random) -> None:
    def price_exp(sku):
        return expect_for(P[sku], "price")

    # -- context -----------------------------------------------------------------------------------
    pairs = [("BK-0012-PB", "BK-0028-PB"), ("BK-0030-PB", "BK-0029-PB"), ("BK-0058-PB", "BK-0060-PB"),
             ("ST-PP-03", "ST-PP-04")]
    for a, b in pairs:
        pa, pb = P[a], P[b]
        ma, mb = short_mention(pa), short_mention(pb)
        cheaper, dearer = sorted((pa, pb), key=lambda p: Decimal(p["price"]))
        assert cheaper["price"] != dearer["price"]
        D.add(short_title(cheaper), "the cheaper of the two products named in the dialogue")
        bank.d([
            turn(f"how much is {ma}?", "product_price", price_exp(a)),
            turn(pick(rng, [f"and for {mb}?", f"and {mb}?", f"what about {mb}?"]), "product_price", price_exp(b)),
            turn(pick(rng, ["which of the two is cheaper?", "so which one's cheaper", "which is less expensive?"]),
                 "product_compare", {"contains": [short_title(cheaper), money(cheaper["price"])]}),
        ], "context", source={"skus": [a, b], "cheaper": cheaper["sku"]})
    for a, b, field in (("BK-0006-PB", "BK-0009-PB", "author"), ("BK-0027-PB", "BK-0033-PB", "pages"),
                        ("BK-0078-PB", "BK-0084-PB", "language"), ("ST-NB-04", "GF-BM-01", "origin"),
                        ("BK-0044-PB", "BK-0046-PB", "publication_year")):
        assert field_value(P[a], field) != field_value(P[b], field), (a, b, field)
        ma, mb = short_mention(P[a]), short_mention(P[b])
        intent, tmpls = TEMPLATES[field]
        bank.d([
            turn(pick(rng, tmpls).format(m=ma), intent, expect_for(P[a], field)),
            turn(pick(rng, [f"same question for {mb}", f"and for {mb}?", f"same for {mb} please"]), intent,
                 expect_for(P[b], field)),
        ], "context", source={"skus": [a, b], "field": field})
    for sku, opener in (("BK-0038-PB", "tell me about {m}"), ("BK-0071-PB", "I'm looking at {m}"),
                        ("BK-0048-PB", "do you have {m}?")):
        p = P[sku]
        m = short_mention(p)
        first = turn(opener.format(m=m), "product_availability", expect_for(p, "availability")) \
            if opener.startswith("do you have") else \
            turn(opener.format(m=m), "product_details", {"contains_any": [[short_title(p), p["author"]]]})
        bank.d([
            first,
            turn("who publishes it?", "product_details", expect_for(p, "publisher")),
            turn("is it in stock?", "product_availability", expect_for(p, "availability")),
            turn("how much?", "product_price", price_exp(sku)),
        ], "context", source={"skus": [sku]})
    for a, b in (("BK-0037-PB", "BK-0035-PB"), ("BK-0076-PB", "BK-0070-PB")):
        pa, pb = P[a], P[b]
        ma, mb = short_mention(pa), short_mention(pb)
        bank.d([
            turn(f"who wrote {ma}?", "product_details", expect_for(pa, "author")),
            turn(f"and how many pages does {mb} have?", "product_details", expect_for(pb, "pages")),
            turn(f"going back to {ma}, how much is it?", "product_price",
                 dict(price_exp(a), not_contains=[money(pb["price"])] if pb["price"] != pa["price"] else [])),
            turn("what year was it published?", "product_details", expect_for(pa, "publication_year")),
        ], "context", source={"skus": [a, b]})

    # -- clarification -------------------------------------------------------------------------------
    def two(mention):
        c = resolve(mention)
        assert len(c) == 2 and c[0]["price"] != c[1]["price"], mention
        return c

    for mention, pick_text, which in (("dune", "the hardcover", "Hardcover"),
                                      ("the name of the rose", "paperback please", "Paperback"),
                                      ("sapiens", "the ebook", "E-book")):
        c = two(mention)
        chosen = next(x for x in c if x["format"] == which)
        other = next(x for x in c if x is not chosen)
        bank.d([
            turn(f"how much is {mention}?", "product_price",
                 {"clarify": True, "contains_any": [[x["format"] for x in c]]}),
            turn(pick_text, "product_price", {"contains": [money(chosen["price"])],
                                              "not_contains": [money(other["price"])]}),
            turn("and is it in stock?", "product_availability", expect_for(chosen, "availability"))
            if chosen["stock"] != "" else
            turn("who's the author?", "product_details", expect_for(chosen, "author")),
        ], "clarify", source={"skus": [x["sku"] for x in c], "chosen": chosen["sku"]})
    for mention, reply in (("a game of thrones", "2"), ("harry potter and the philosopher's stone", "the second"),
                           ("pride and prejudice", "the second one")):
        c = two(mention)
        bank.d([
            turn(f"price of {mention}?", "product_price", {"clarify": True, "contains_any": [[x["format"] for x in c]]}),
            turn(reply, "product_price", {"contains_any": [[money(x["price"]) for x in c]]},
                 note="order-dependent: the price of whichever edition the bot listed second (one of the two); "
                      "a runner that knows the bot's list order should require that one and forbid the other"),
        ], "clarify", source={"skus": [x["sku"] for x in c], "rule": "numbered reply"})
    for mention in ("thinking fast and slow", "the reading light"):
        c = two(mention)
        bank.d([
            turn(f"how much is {mention}", "product_price", {"clarify": True}),
            turn("both", "product_price", {"contains": [money(x["price"]) for x in c]}),
        ], "clarify", source={"skus": [x["sku"] for x in c], "rule": "both"})
    c = two("a game of thrones")
    bank.d([
        turn("how many pages is a game of thrones?", "product_details",
             {"clarify": True, "contains_any": [[x["format"] for x in c]]}),
        turn("the paperback", "product_details", expect_for(next(x for x in c if x["format"] == "Paperback"), "pages")),
    ], "clarify", source={"skus": [x["sku"] for x in c]})
    # a new request while the question is pending
    c = two("dune")
    bank.d([
        turn("is dune expensive? how much", "product_price", {"clarify": True}),
        turn("actually never mind, do you ship to austria?", "delivery_options",
             {"contains_any": [WORDS["yes"] + ["Standard", "Express"]]}),
    ], "clarify", source={"skus": [x["sku"] for x in c], "rule": "new request drops the pending question"})
    c = two("sapiens")
    bank.d([
        turn("price of sapiens?", "product_price", {"clarify": True}),
        turn(f"hmm wait, who wrote {short_mention(P['BK-0028-PB'])}?", "product_details",
             expect_for(P["BK-0028-PB"], "author")),
        turn("ok and the sapiens paperback, how much?", "product_price", price_exp("BK-0073-PB")),
    ], "clarify", source={"skus": [x["sku"] for x in c] + ["BK-0028-PB"]})
    # author mention -> clarify -> pick by title (two editions, same price: answer at once)
    christie = resolve("that agatha christie one")
    oe = resolve("orient express")
    assert len({x["price"] for x in oe}) == 1
    bank.d([
        turn("how much is that agatha christie one?", "product_price", {"clarify": True}),
        turn("orient express", "product_price", {"contains": [money(oe[0]["price"])]}),
    ], "clarify", source={"skus": [x["sku"] for x in christie], "chosen": [x["sku"] for x in oe]})

    # -- orders ----------------------------------------------------------------------------------------
    def order_dialogue(o, extra_turns):
        items = ITEMS[o["order_id"]]
        t = [turn(f"where is my order {o['order_id']}?", "track_order", status_expect(o)),
             turn("what's in it?", "order_details", {"contains": [short_title(P[i["sku"]]) for i in items]})]
        bank.d(t + extra_turns, "orders", o["customer_id"], source={"order": o["order_id"]})

    fee = next(x for x in POLICIES if x["type"] == "cancellation")["fee"]
    shipped = sorted([o for o in ORDERS.values() if o["status"] == "shipped"], key=lambda o: o["order_id"])
    delivered_ret = sorted([o for o in ORDERS.values() if o["status"] == "delivered" and order_return(o)
                            and order_return(o)[0] > 0], key=lambda o: o["order_id"])
    o = shipped[0]
    order_dialogue(o, [turn("how much would it cost to cancel it now?", "check_cancellation_fee",
                            {"contains": [money(fee)]})])
    o = next(x for x in reversed(delivered_ret) if order_return(x)[3] - dt.timedelta(days=1) >= TODAY)
    d = order_return(o)
    order_dialogue(o, [turn("can I still return it?", "check_refund_policy",
                            {"contains_any": [WORDS["return_ok"], deadline_forms(d[3])]})])
    o = next(x for x in delivered_ret if order_return(x)[3] < TODAY and (TODAY - order_return(x)[3]).days < 40)
    d = order_return(o)
    order_dialogue(o, [turn("and can I still send it back?", "check_refund_policy",
                            {"contains_any": [WORDS["return_over"], deadline_forms(d[3])]})])
    o = next(x for x in ORDERS.values() if x["status"] in ("placed", "paid") and len(ITEMS[x["order_id"]]) >= 1)
    order_dialogue(o, [turn("what's the total?", "order_details", {"contains": [money(o["total"])]}),
                       turn("is cancelling it free?", "check_cancellation_fee",
                            {"contains_any": [WORDS["free"]], "not_contains": [money(fee)]})])
    # two orders of one customer, then "the first one"
    cust = next(c for c in sorted(CUSTOMERS) if sum(1 for o in ORDERS.values() if o["customer_id"] == c
                                                     and o["status"] == "delivered") >= 2)
    o1, o2 = [o for o in ORDERS.values() if o["customer_id"] == cust and o["status"] == "delivered"][-2:]
    bank.d([
        turn(f"what's the status of {o1['order_id']} and {o2['order_id']}?", "track_order",
             {"contains_any": [WORDS["status"]["delivered"]]}),
        turn(f"what was the total of {o2['order_id']}?", "order_details", {"contains": [money(o2["total"])],
                                                                             "not_contains": [money(o1["total"])]
                                                                             if o1["total"] != o2["total"] else []}),
        turn("and the other one?", "order_details", {"contains": [money(o1["total"])]}),
    ], "orders", cust, source={"orders": [o1["order_id"], o2["order_id"]]})

    # -- sign-in mid conversation --------------------------------------------------------------------
    for o in [x for x in shipped[1:]][:2] + [next(x for x in ORDERS.values() if x["status"] == "delivered"
                                                    and x["order_id"] == "70203")]:
        cid = o["customer_id"]
        bank.d([
            turn(f"hi, where is my order {o['order_id']}?", "track_order",
                 {"contains_any": [WORDS["signin"]], "not_contains": order_fact_strings(o)}, customer_id=None),
            turn("ok I've signed in now. where is it?", "track_order", status_expect(o), customer_id=cid),
            turn("how much did I pay?", "order_details", {"contains": [money(o["total"])]}, customer_id=cid),
        ], "signin", None, source={"order": o["order_id"], "rule": "anonymous first turn, signed in later"})
    p = P["BK-0033-PB"]
    o = next(x for x in ORDERS.values() if x["status"] == "placed")
    bank.d([
        turn(f"is {short_mention(p)} in stock?", "product_availability", expect_for(p, "availability"),
             customer_id=None),
        turn(f"ok. also what's happening with my order {o['order_id']}", "track_order",
             {"contains_any": [WORDS["signin"]], "not_contains": order_fact_strings(o)}, customer_id=None),
        turn("signed in. so?", "track_order", status_expect(o), customer_id=o["customer_id"]),
    ], "signin", None, source={"order": o["order_id"], "skus": [p["sku"]]})

    # -- hand-off --------------------------------------------------------------------------------------
    o = shipped[-1]
    bank.d([
        turn(f"my order {o['order_id']} is taking forever", "complaint", status_expect(o)),
        turn("I want to talk to a person", "contact_human_agent", {"contains_any": [WORDS["handoff"]]}),
    ], "handoff", o["customer_id"], source={"order": o["order_id"]})
    bank.d([
        turn(f"how much is {only('the fountain pen', 'ST-PP-01')}?", "product_price", price_exp("ST-PP-01")),
        turn("this is useless, let me speak to a human", "contact_human_agent", {"contains_any": [WORDS["handoff"]]}),
    ], "handoff", None, source={"skus": ["ST-PP-01"]})
    bank.d([
        turn("hello", "greeting", {}),
        turn("can a real person help me with a bulk order for my school?", "contact_human_agent",
             {"contains_any": [WORDS["handoff"]]}),
    ], "handoff", None, source={})

    # -- policy context ---------------------------------------------------------------------------------
    nb, bk, eb = P["ST-NB-03"], P["BK-0069-PB"], P["BK-0023-EB"]
    bank.d([
        turn(f"how long do I have to return the {short_mention(nb)}?", "check_refund_policy",
             {"contains": [f"{return_days(nb)[0]} days"]}),
        turn(f"and for a book like {short_mention(bk)}?", "check_refund_policy",
             {"contains": [f"{return_days(bk)[0]} days"]}),
        turn(f"what about the {only('1984 ebook', eb['sku'])}?", "check_refund_policy",
             {"contains_any": [WORDS["no_returns"]]}),
    ], "policy", None, source={"skus": [nb["sku"], bk["sku"], eb["sku"]]})
    bank.d([
        turn("do you ship to switzerland?", "delivery_options",
             {"contains_any": [WORDS["yes"] + ["International"]]}),
        turn("how much does that cost?", "delivery_options", {"contains": [money(SHIPPING["International"]["cost"])]}),
        turn("and to canada?", "delivery_options", {"contains_any": [WORDS["no"]]}),
    ], "policy", None, source={"methods": ["International"]})
    fp = P["ST-PP-01"]
    bank.d([
        turn(f"does the {short_mention(fp)} come with a warranty?", "product_warranty",
             {"contains_any": [warranty(fp)[1]]}),
        turn(f"and {only('pride and prejudice clothbound', 'BK-0039-CB')}?", "product_warranty",
             {"contains_any": [warranty(P["BK-0039-CB"])[1]]}),
    ], "policy", None, source={"skus": ["ST-PP-01", "BK-0039-CB"]})


# ================================================================================================
def self_check(bank: Bank) -> list[str]:
    problems: list[str] = []
    raw = ""
    for f in sorted(DATA.iterdir()):
        raw += unicodedata.normalize("NFC", f.read_text(encoding="utf-8")).lower() + "\n"
    raw += TODAY.isoformat()
    words = all_words()

    def check_value(where, s):
        v = unicodedata.normalize("NFC", s).lower()
        m = re.fullmatch(r"(\d+\.\d{2}) eur", v)
        if m and m.group(1) not in raw:  # a money value must be a number of the data, not just well formatted
            problems.append(f"{where}: {s!r} is not an amount of the data")
            return
        if v in raw or v in D.values or v in words:
            return
        problems.append(f"{where}: {s!r} is neither in the data, nor a derived value, nor a generic answer word")

    def check_expect(where, e, intent):
        for s in e["contains"] + e["not_contains"]:
            check_value(where, s)
        for alts in e.get("contains_any", []):
            if not alts:
                problems.append(f"{where}: empty contains_any list")
            for s in alts:
                check_value(where, s)
        if intent not in INTENTS:
            problems.append(f"{where}: unknown intent {intent}")
        for s in e["contains"] + [a for alts in e.get("contains_any", []) for a in alts]:
            if re.fullmatch(r"\d+\.\d+ EUR", s) is None and re.search(r"\d+\.\d+\s*EUR|EUR\s*\d", s):
                problems.append(f"{where}: money not in DESIGN format: {s!r}")
        if e["unknown"] and (e["contains"] or e.get("contains_any")):
            problems.append(f"{where}: unknown with expected values")
        overlap = set(e["contains"]) & set(e["not_contains"])
        if overlap:
            problems.append(f"{where}: contains and not_contains share {overlap}")

    ids = Counter(x["id"] for x in bank.questions + bank.dialogues)
    problems += [f"duplicate id {i}" for i, n in ids.items() if n > 1]
    texts = Counter(q["text"] for q in bank.questions)
    problems += [f"duplicate question text {t!r}" for t, n in texts.items() if n > 1]
    for q in bank.questions:
        check_expect(q["id"], q["expect"], q["intent"])
        if q["covers"] not in COVERS:
            problems.append(f"{q['id']}: covers {q['covers']}")
        cid = q["customer_id"]
        if cid is not None and cid not in CUSTOMERS:
            problems.append(f"{q['id']}: unknown customer {cid}")
        oid = q["source"].get("order")
        if q["covers"] == "orders":
            if cid is None:
                problems.append(f"{q['id']}: order question without a signed-in customer")
            owner = ORDERS[oid]["customer_id"] if oid else None
            if "owner" in q["source"]:
                if owner == cid:
                    problems.append(f"{q['id']}: 'another customer' order belongs to the asker")
            elif owner != cid:
                problems.append(f"{q['id']}: order {oid} is not the asker's")
        elif q["covers"] != "orders" and cid is not None:
            problems.append(f"{q['id']}: customer_id set on a non-order question")
        if q["expect"]["clarify"]:
            vals = q["source"].get("values", [])
            if len(q["source"].get("skus", [])) < 2 or len(vals) < 2:
                problems.append(f"{q['id']}: clarify without several products with differing answers")
    for d in bank.dialogues:
        if not 2 <= len(d["turns"]) <= 5:
            problems.append(f"{d['id']}: {len(d['turns'])} turns")
        if d["covers"] not in COVERS:
            problems.append(f"{d['id']}: covers {d['covers']}")
        for i, t in enumerate(d["turns"]):
            check_expect(f"{d['id']}.{i + 1}", t["expect"], t["intent"])
            cid = t.get("customer_id", d["customer_id"])
            if cid is not None and cid not in CUSTOMERS:
                problems.append(f"{d['id']}.{i + 1}: unknown customer {cid}")
        if d["covers"] == "signin":
            cids = [t.get("customer_id", d["customer_id"]) for t in d["turns"]]
            if cids[0] is not None or cids[-1] is None:
                problems.append(f"{d['id']}: sign-in dialogue must start anonymous and end signed in")
    # consistency of the order data the gold relies on: totals = items (less discount) + shipping
    for o in ORDERS.values():
        sub = sum(Decimal(str(Decimal(i["unit_price"]) * int(i["quantity"]) * (1 - Decimal(i["discount"] or "0"))))
                  .quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) for i in ITEMS[o["order_id"]])
        m = SHIPPING.get(o["shipping_method"])
        ship = Decimal(m["cost"]) if m else Decimal("0")
        if m and m["free_over"] and sub >= Decimal(m["free_over"]):
            ship = Decimal("0")
        if sub + ship != Decimal(o["total"]):
            problems.append(f"order {o['order_id']}: total {o['total']} != items {sub} + shipping {ship}")
        if o["delivered_at"] and day(o["delivered_at"]) > TODAY:
            problems.append(f"order {o['order_id']}: delivered after today")
        if o["status"] == "shipped" and (not o["shipped_at"] or o["delivered_at"]):
            problems.append(f"order {o['order_id']}: shipped without shipped_at, or with delivered_at")
    if len(bank.questions) < 160:
        problems.append(f"only {len(bank.questions)} questions")
    if len(bank.dialogues) < 32:
        problems.append(f"only {len(bank.dialogues)} dialogues")
    return problems


def main() -> int:
    rng = random.Random(SEED)
    bank = Bank()
    singles(bank, rng)
    dialogues(bank, rng)
    with open(HERE / "questions.jsonl", "w", encoding="utf-8") as f:
        for q in bank.questions:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    with open(HERE / "dialogues.jsonl", "w", encoding="utf-8") as f:
        for d in bank.dialogues:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    problems = self_check(bank)
    qc = Counter(q["covers"] for q in bank.questions)
    dc = Counter(d["covers"] for d in bank.dialogues)
    print(f"questions: {len(bank.questions)}  " + ", ".join(f"{k} {qc[k]}" for k in COVERS))
    print(f"dialogues: {len(bank.dialogues)} ({sum(len(d['turns']) for d in bank.dialogues)} turns)  "
          + ", ".join(f"{k} {dc[k]}" for k in COVERS), flush=True)
    if problems:
        print(f"SELF-CHECK FAILED: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems[:50]:
            print("  " + p, file=sys.stderr)
        return 1
    print("self-check passed: every expected value is in the data, derived by a documented rule, "
          "or a generic answer word")
    return 0


if __name__ == "__main__":
    sys.exit(main())
