"""Training and evaluation examples: phrasings filled with real catalog names, with character spans.

A phrasing such as "is the {product} in stock?" becomes many examples: the slot is filled with a
name written the way shoppers write it (full name, the model line without brand or variant, a
model number with its own spacing and case, lowercase, a typo now and then), and noise goes on
top of the surrounding words (lowercase, dropped punctuation, typos, doubled spaces). Every
entity keeps its exact character span, which `encode` turns into BIO tags per token through the
tokenizer's offset mapping.

Training fills the training phrasings with the training half of the catalog; evaluation fills the
held-out phrasing file with the held-out half (`Catalog.split`). Everything is a pure function of
its inputs and a seed.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.errors import NLUError
from nlu.catalog import Catalog, ProductName
from nlu.labels import BIO_TAGS, INTENTS, SLOT_TYPES

DATA_DIR = Path(__file__).resolve().parent / "data"
EVAL_PHRASINGS = DATA_DIR / "eval_phrasings.yaml"
IGNORE_INDEX = -100

_SLOT = re.compile(r"\{([a-z_]+)\}")


def train_phrasing_files(data_dir: Path = DATA_DIR) -> list[Path]:
    """Every training phrasing file (`train_phrasings*.yaml`); never the evaluation file."""
    return sorted(p for p in data_dir.glob("train_phrasings*.yaml") if p.name != EVAL_PHRASINGS.name)


# -- records ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    node_id: str | None = None  # the catalog key the mention was made from (sku, name, order id)


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    spans: tuple[Span, ...] = ()
    phrasing: str = ""
    tagged: bool = True  # False: outside text whose entities nobody marked (no entity supervision)


# -- phrasing files ----------------------------------------------------------------------------------
def load_phrasings(paths: Path | Iterable[Path]) -> dict[str, list[str]]:
    """intent -> phrasings, merged over files in order; unknown intents or slots are an NLUError."""
    files = [paths] if isinstance(paths, Path | str) else list(paths)
    merged: dict[str, list[str]] = {}
    for path in files:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise NLUError(f"phrasing file {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise NLUError(f"phrasing file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise NLUError(f"phrasing file {path} must map intent names to lists of phrasings")
        for intent, items in data.items():
            if intent not in INTENTS:
                raise NLUError(f"{path}: unknown intent {intent!r}")
            if not isinstance(items, list):
                raise NLUError(f"{path}: {intent} must be a list of phrasings")
            for item in items:
                text = str(item).strip()
                for slot in _SLOT.findall(text):
                    if slot not in SLOT_TYPES:
                        raise NLUError(f"{path}: {intent}: unknown slot {{{slot}}} in {text!r}")
                if text:
                    merged.setdefault(intent, []).append(text)
    for intent in merged:
        merged[intent] = list(dict.fromkeys(merged[intent]))
    return merged


def split_validation(phrasings: dict[str, list[str]], fraction: float = 0.1) -> tuple[dict, dict]:
    """(train, validation) phrasings: a stable per-intent hold-out for calibration and monitoring."""
    train: dict[str, list[str]] = {}
    val: dict[str, list[str]] = {}
    for intent, items in phrasings.items():
        ranked = sorted(items, key=lambda t: _stable(f"val:{intent}:{t}"))
        k = int(round(len(ranked) * fraction)) if len(ranked) >= 6 else 0
        held = set(ranked[:k])
        train[intent] = [t for t in items if t not in held]
        val[intent] = [t for t in items if t in held]
    return train, {k: v for k, v in val.items() if v}


def _stable(key: str) -> int:
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big")


# -- how shoppers write names ------------------------------------------------------------------------
_KEYBOARD = {
    "a": "qsz", "b": "vgn", "c": "xdv", "d": "sfe", "e": "wrd", "f": "dgr", "g": "fht", "h": "gjy",
    "i": "uok", "j": "hkn", "k": "jlm", "l": "kop", "m": "nk", "n": "bmj", "o": "ipl", "p": "ol",
    "q": "wa", "r": "etf", "s": "adw", "t": "ryg", "u": "yij", "v": "cbf", "w": "qes", "x": "zcs",
    "y": "tuh", "z": "xas",
}


def typo(word: str, rng: random.Random) -> str:
    """One keyboard-plausible edit (swap, drop, double, neighbour key) inside a word of 4+ letters."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.random()
    if kind < 0.3:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind < 0.55:
        return word[:i] + word[i + 1:]
    if kind < 0.75:
        return word[:i] + word[i] + word[i:]
    near = _KEYBOARD.get(word[i].lower())
    if not near:
        return word
    ch = rng.choice(near)
    return word[:i] + (ch.upper() if word[i].isupper() else ch) + word[i + 1:]


def _typo_in_phrase(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    words[i] = typo(words[i], rng)
    return " ".join(words)


_MODEL_TOKEN = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9]+(?:[-/.][A-Za-z0-9]+)*$")
_LETTER_DIGIT = re.compile(r"[A-Za-z]+|\d+")


def model_number_variants(token: str) -> list[str]:
    """"NA-700X" -> ["NA-700X", "NA700X", "NA 700X", "na700x", "na-700x", "na 700x", ...]."""
    parts = [p for p in re.split(r"[-/\s]", token) if p]
    if len(parts) == 1:
        parts = _LETTER_DIGIT.findall(token) or [token]
        if len(parts) > 3:  # "A1B2C3": keep it whole rather than splitting at every boundary
            parts = [token]
    forms = {"".join(parts), " ".join(parts), "-".join(parts), token}
    out = set()
    for f in forms:
        out.update({f, f.lower(), f.upper()})
    return sorted(out)


def _without_brand(name: str, brand: str | None) -> str:
    if brand and name.lower().startswith(brand.lower() + " "):
        return name[len(brand) + 1:].strip()
    return name


def _without_variant(name: str, product: ProductName) -> str:
    """Drop trailing variant parts (", Black", ", 16 GB RAM", " (US 9)") named by the attributes."""
    values = [v.lower() for v in product.variant_values]
    out = name.strip()
    while True:
        m = re.match(r"^(.*\S)\s*(?:,|\s-\s|\s–\s|\|)\s*([^,|]+)$", out) or re.match(r"^(.*\S)\s*\(([^()]*)\)$", out)
        if not m or not any(v in m.group(2).lower() for v in values):
            return out or name
        out = m.group(1).strip()


def _category_words(category: str | None) -> set[str]:
    if not category:
        return set()
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", category)}
    return words | {singular(w) for w in words} | {plural(w) for w in words}


_SPEC = re.compile(r"^\d+(?:[.,]\d+)?[A-Za-z]{0,3}$")  # "65W", "128GB", "14": specs, not model names


def model_line(product: ProductName) -> str:
    """"Nordic Audio Aurora X2 Wireless Headphones, Black" -> "Aurora X2": the product's own
    model-line attribute when it has one, else the name without brand, variant and kind."""
    if product.model_line:
        return product.model_line
    core = _without_variant(_without_brand(product.name, product.brand), product)
    core = core.split(" for ")[0].strip() or core  # "65W Charger for Nova 5": the charger itself
    words = core.split()
    digit_at = [i for i, w in enumerate(words[:5]) if any(ch.isdigit() for ch in w) and not (i == 0 and _SPEC.match(w))]
    if digit_at:
        return " ".join(words[: digit_at[-1] + 1])
    kind = _category_words(product.category)
    while len(words) > 1 and words[-1].lower().strip(",.") in kind:
        words = words[:-1]
    if len(words) > 2 and not _SPEC.match(words[0]):
        words = words[:2]
    return " ".join(words)


def model_numbers(text: str) -> list[str]:
    """Tokens that read as model numbers ("NA-700X", "CLX-1510"): 2+ letters and 2+ digits."""
    out = []
    for w in text.split():
        w = w.strip(",.()")
        if _MODEL_TOKEN.match(w) and sum(ch.isalpha() for ch in w) >= 2 and sum(ch.isdigit() for ch in w) >= 2:
            out.append(w)
    return out


def product_surface(product: ProductName, rng: random.Random) -> str:
    name = product.name.strip()
    no_brand = _without_brand(name, product.brand)
    base = _without_variant(no_brand, product)
    line = model_line(product)
    own_line = line.split(" for ")[0]  # "Travel Case for Aurora X2": the model numbers of the case itself
    models = model_numbers(own_line)
    r = rng.random()
    if r < 0.22:
        out = name
    elif r < 0.40:
        out = base
    elif r < 0.62:
        out = line
    elif r < 0.75 and product.brand:
        out = f"{product.brand} {line}"
    elif r < 0.90 and models:
        token = rng.choice(models)
        out = rng.choice(model_number_variants(token))
        if rng.random() < 0.3 and line != token:
            out = line.replace(token, out)
    elif r < 0.95:
        out = _without_variant(name, product)
    else:
        out = no_brand
    return _shopper_case(out, rng, typo_p=0.08)


def _shopper_case(text: str, rng: random.Random, typo_p: float) -> str:
    r = rng.random()
    if r < 0.45:
        text = text.lower()
    elif r < 0.48:
        text = text.upper()
    if rng.random() < typo_p:
        text = _typo_in_phrase(text, rng)
    return text


_NO_NUMBER = ("ing", "ics", "ure", "ware", "ness", "wear", "ion", "ment")


def singular(word: str) -> str:
    w = word
    lw = w.lower()
    if lw.endswith(_NO_NUMBER):
        return w
    if lw.endswith("ies") and len(w) > 4:
        return w[:-3] + ("Y" if w[-1].isupper() else "y")
    if re.search(r"(ches|shes|sses|xes|zes)$", lw):
        return w[:-2]
    if lw.endswith("s") and not lw.endswith(("ss", "us", "is")) and len(w) > 3:
        return w[:-1]
    return w


def plural(word: str) -> str:
    w = word
    lw = w.lower()
    if not lw or not lw[-1].isalpha() or lw.endswith(_NO_NUMBER):
        return w
    if lw.endswith("s") and singular(w) != w:  # already plural
        return w
    if lw.endswith("y") and len(lw) > 1 and lw[-2] not in "aeiou":
        return w[:-1] + "ies"
    if re.search(r"(ch|sh|ss|x|z)$", lw):
        return w + "es"
    return w + "s"


def category_surface(category: str, rng: random.Random) -> str:
    words = category.split()
    r = rng.random()
    if words and r < 0.3:
        words[-1] = singular(words[-1])
    elif words and r < 0.5:
        words[-1] = plural(words[-1])
    return _shopper_case(" ".join(words), rng, typo_p=0.05)


def brand_surface(brand: str, rng: random.Random) -> str:
    return _shopper_case(brand, rng, typo_p=0.05)


def attribute_surface(value: str, rng: random.Random) -> str:
    return _shopper_case(value, rng, typo_p=0.03)


def order_surface(order_id: str, rng: random.Random) -> str:
    r = rng.random()
    out = order_id
    if r < 0.3:
        out = "#" + order_id
    elif r < 0.4 and not order_id.isdigit():
        out = order_id.lower()
    elif r < 0.45 and "-" in order_id:
        out = order_id.replace("-", "")
    return out


_CURRENCIES = (
    ("$", "dollars", "usd"), ("€", "euros", "eur"), ("£", "pounds", "gbp"),
)


def money_surface(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        amount = rng.choice([rng.randrange(5, 100), rng.randrange(10, 60) * 10, rng.randrange(2, 40) * 50])
        num = str(amount)
    elif r < 0.8:
        num = f"{rng.randrange(5, 1000)}.{rng.choice(['99', '95', '50', '00', '49'])}"
    else:
        amount = rng.randrange(1, 5) * 1000 + rng.choice([0, 0, 200, 500, 999])
        num = f"{amount:,}" if rng.random() < 0.6 else str(amount)
    sym, word, code = rng.choices(_CURRENCIES, weights=(0.6, 0.25, 0.15))[0]
    style = rng.random()
    if style < 0.4:
        return f"{sym}{num}"
    if style < 0.55:
        return f"{num} {word}"
    if style < 0.65:
        return f"{num}{sym}"
    if style < 0.8:
        return f"{num} {code if rng.random() < 0.6 else code.upper()}"
    if style < 0.88:
        return f"{code.upper()} {num}"
    if style < 0.95 and sym == "$":
        return f"{num} bucks"
    return f"{sym} {num}"


# -- extra names for training only ----------------------------------------------------------------
# A shop has a few dozen brands and categories; a model that has only ever seen those learns the
# names instead of the contexts, and misses a brand or category added next month. Training
# therefore mixes in names from generic shop vocabulary and made-up brands and products (never a
# name from the held-out side of the catalog, see `Augmentation.build`).
GENERIC_CATEGORIES = (
    "Televisions", "Monitors", "Printers", "Speakers", "Soundbars", "Earbuds", "Microphones", "Webcams",
    "Routers", "Hard Drives", "Memory Cards", "Power Banks", "Gaming Consoles", "Video Games", "Drones",
    "Projectors", "E-Readers", "Fitness Trackers", "Smart Home", "Smart Speakers", "Security Cameras",
    "Vacuum Cleaners", "Air Purifiers", "Coffee Makers", "Blenders", "Toasters", "Microwaves",
    "Air Fryers", "Kettles", "Cookware", "Knives", "Bedding", "Pillows", "Mattresses", "Rugs", "Curtains",
    "Sofas", "Office Chairs", "Desks", "Bookcases", "Wardrobes", "Garden Tools", "Lawn Mowers", "Grills",
    "Power Tools", "Toys", "Board Games", "Puzzles", "Books", "Stationery", "Art Supplies", "Pet Supplies",
    "Dog Food", "Baby Strollers", "Car Seats", "Skincare", "Perfume", "Hair Dryers", "Shavers",
    "Watches", "Sunglasses", "Jewellery", "Handbags", "Wallets", "Sneakers", "Boots", "Sandals",
    "T-Shirts", "Hoodies", "Jeans", "Dresses", "Swimwear", "Socks", "Rain Jackets", "Tents",
    "Sleeping Bags", "Hiking Boots", "Yoga Mats", "Dumbbells", "Treadmills", "Exercise Bikes",
    "Bike Helmets", "Bike Lights", "Tennis Rackets", "Golf Balls", "Ski Goggles", "Luggage", "Suitcases",
    "Water Bottles", "Lunch Boxes", "Phone Chargers", "USB Cables", "Screen Protectors", "Graphics Cards",
    "Keyboards", "Gaming Mice", "Headsets", "Standing Desks", "Desk Lamps", "Light Bulbs", "Home Office",
    "Outdoor", "Kids", "Beauty", "Garden", "Office Supplies", "Audio", "Computers", "Appliances",
)
GENERIC_ATTRIBUTES = (
    "black", "white", "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "beige",
    "grey", "gray", "silver", "gold", "rose gold", "navy blue", "sky blue", "dark green", "olive",
    "burgundy", "teal", "turquoise", "charcoal", "ivory", "cream", "khaki", "coral", "lavender", "mint",
    "matte black", "space gray", "jet black", "pearl white", "royal blue", "bright red", "light grey",
    "copper", "bronze", "titanium", "champagne", "cherry", "maroon", "mustard", "tan", "crimson",
    "XS", "S", "M", "L", "XL", "XXL", "small", "medium", "large", "extra large", "size 10", "size 42",
    "EU 40", "EU 43", "UK 7", "US 10.5", "one size", "32 GB", "64GB", "128GB", "256 GB", "512GB", "1TB",
    "2 TB", "4 GB RAM", "8GB RAM", "16 GB RAM", "13 inch", "15-inch", "27 inch", "4K", "1080p", "OLED",
    "LCD", "leather", "cotton", "wool", "linen", "silk", "denim", "suede", "nylon", "polyester",
    "stainless steel", "aluminium", "aluminum", "oak", "walnut", "bamboo", "glass", "ceramic", "plastic",
    "carbon", "velvet", "canvas", "marble", "slim fit", "regular fit", "long sleeve", "short sleeve",
    "500 ml", "1.5 l", "2 litre", "1000W", "20000 mAh", "vegan leather", "king size", "queen size",
)
# Multi-word values ("matte black", "recycled polyester") so that B-/I- is learnt, not one B- a word.
_ATTRIBUTE_MODIFIERS = ("matte", "dark", "light", "pale", "deep", "bright", "metallic", "natural", "smoked",
                        "brushed", "recycled", "organic", "engineered", "waxed", "midnight", "forest", "ocean",
                        "storm", "arctic", "sand")
_SYL_START = ("b", "br", "c", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "kr", "l", "m", "n",
              "p", "pl", "qu", "r", "s", "st", "sv", "t", "tr", "v", "z", "x", "y")
_SYL_VOWEL = ("a", "e", "i", "o", "u", "ai", "ea", "io", "y", "ou")
_SYL_END = ("", "", "n", "r", "l", "s", "x", "m", "th", "nd", "rk", "ta", "ra", "on", "ix", "ex", "el")
_BRAND_SUFFIX = ("", "", "", "", " Audio", " Labs", " Works", " & Co", " Home", " Gear", " Mobile", " Sport",
                 " Outdoors", " Tech", " Design", " Kitchen", " Living", " Optics", " Studio", " Electronics")
_LINE_SUFFIX = ("", "", " Pro", " Max", " Mini", " Plus", " Air", " Lite", " Ultra", " SE", " II", " S",
                " GT", " Neo", " Go", " Sport", " Flex", " One", " Edge", " Prime")


def _pseudo_word(rng: random.Random) -> str:
    n = rng.choice((2, 2, 2, 3))
    word = "".join(rng.choice(_SYL_START) + rng.choice(_SYL_VOWEL) for _ in range(n - 1))
    return (word + rng.choice(_SYL_START) + rng.choice(_SYL_VOWEL) + rng.choice(_SYL_END)).capitalize()


def _kind_of(category: str) -> str:
    words = category.split()
    words[-1] = singular(words[-1])
    return " ".join(words)


@dataclass(frozen=True)
class Augmentation:
    """Training-only names: generic categories and attribute values, made-up brands and products."""

    brands: tuple[str, ...]
    categories: tuple[str, ...]
    attribute_values: tuple[str, ...]
    products: tuple[ProductName, ...]
    product_p: float = 0.25  # share of slot fills drawn from here rather than from the catalog
    name_p: float = 0.4

    @classmethod
    def build(cls, seed: int, exclude: Iterable[str] = (), n_brands: int = 300, n_products: int = 1500,
              ) -> Augmentation:
        """`exclude`: names that must never be trained on (the held-out side of the catalog)."""
        banned = set()
        for name in exclude:
            low = name.lower().strip()
            words = low.split()
            banned.add(low)
            if words:
                banned.add(" ".join(words[:-1] + [singular(words[-1])]))
                banned.add(" ".join(words[:-1] + [plural(words[-1])]))

        def ok(name: str) -> bool:
            low = name.lower()
            return low not in banned and not any(low.startswith(b + " ") for b in banned if len(b) > 3)

        rng = random.Random(f"nlu-augment:{seed}")
        brands: list[str] = []
        while len(brands) < n_brands:
            b = _pseudo_word(rng) + rng.choice(_BRAND_SUFFIX)
            if ok(b) and b not in brands:
                brands.append(b)
        categories = tuple(c for c in GENERIC_CATEGORIES if ok(c))
        base = [a for a in GENERIC_ATTRIBUTES if ok(a)]
        colours = [a for a in base if not any(ch.isdigit() for ch in a)][:50]
        compound = {f"{rng.choice(_ATTRIBUTE_MODIFIERS)} {rng.choice(colours[:60])}" for _ in range(120)}
        attributes = tuple(base) + tuple(sorted(c for c in compound if ok(c)))
        products: list[ProductName] = []
        for i in range(n_products):
            brand = rng.choice(brands)
            category = rng.choice(categories)
            style = rng.random()
            if style < 0.45:
                line = f"{_pseudo_word(rng)} {rng.choice(('', str(rng.randint(1, 20)), rng.choice('XSTVMQ') + str(rng.randint(1, 9))))}".strip()
            elif style < 0.75:
                line = (_pseudo_word(rng) + rng.choice(_LINE_SUFFIX)).strip()
            else:
                prefix = "".join(rng.choice("ABCDEFGHKLMNPRSTVXZ") for _ in range(rng.randint(2, 3)))
                line = f"{prefix}-{rng.randint(10, 9999)}{rng.choice(('', '', 'X', 'S', 'BT', 'E', 'N'))}"
            colour = rng.choice(colours)
            kind = _kind_of(category)
            name = f"{brand} {line} {kind}"
            attrs: tuple[tuple[str, str], ...] = (("model_line", line), ("colour", colour.title()))
            if rng.random() < 0.7:
                name += f", {colour.title()}"
            products.append(ProductName(sku=f"AUG-{i:05d}", name=name, brand=brand, category=category,
                                        attributes=attrs))
        return cls(tuple(brands), categories, attributes, tuple(products))


# Training-only slot expansions: the same intent, with the rarer entity types in more contexts.
_EXPANSIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "product": (("{product} in {attribute}", 0.06), ("{attribute} {product}", 0.04), ("{product} under {money}", 0.02),
                ("{brand} {category}", 0.04)),
    "category": (("{attribute} {category}", 0.12), ("{brand} {category}", 0.12),
                 ("{category} under {money}", 0.1), ("{category} from {brand}", 0.05)),
    "brand": (("{brand} {category}", 0.1),),
}


# Training-only words after the message, so that a name at the end of a phrasing does not teach the
# model that every word after a product belongs to it ("... the Tempo 4 pls", "... for gaming").
_TAILS = (" pls", " please", " thanks", " thx", " asap", " now", " today", " right now", " again", " too",
          " for my son", " for my wife", " for work", " for gaming", " for running", " for school",
          " for a friend", " 5 stars", " machine washable", " camera quality", " battery life", " in the uk",
          " this week", " by friday", " or not", " or what", " lol", " :)", " ??", " !!", " ok", " then",
          " though", " exactly", " btw", " at all", " anymore", " yet", " here", " online", " with tax",
          " including shipping")


def add_tail(phrasing: str, rng: random.Random) -> str:
    ends_with_slot = phrasing.rstrip(" ?.!").endswith("}")
    if rng.random() >= (0.3 if ends_with_slot else 0.06):
        return phrasing
    body = phrasing.rstrip(" ?.!")
    return body + rng.choice(_TAILS) + phrasing[len(body):].strip()


def expand_slots(phrasing: str, rng: random.Random) -> str:
    def repl(m: re.Match[str]) -> str:
        options = _EXPANSIONS.get(m.group(1), ())
        r = rng.random()
        for text, p in options:
            if r < p:
                return text
            r -= p
        return m.group(0)

    return _SLOT.sub(repl, phrasing)


# -- filling --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Noise:
    lower: float = 0.35  # lowercase the words around the entities
    drop_punct: float = 0.25
    word_typo: float = 0.02  # per word of 4+ letters, outside entities
    double_space: float = 0.08
    upper: float = 0.02


NO_NOISE = Noise(0.0, 0.0, 0.0, 0.0, 0.0)
_PUNCT = re.compile(r"[.,!?;:'\"]")


def _noisy_literal(text: str, rng: random.Random, noise: Noise, lower: bool, drop: bool, upper: bool) -> str:
    if lower:
        text = text.lower()
    if upper:
        text = text.upper()
    if drop:
        text = _PUNCT.sub("", text)
    if noise.word_typo:
        words = text.split(" ")
        words = [typo(w, rng) if len(w) >= 4 and rng.random() < noise.word_typo else w for w in words]
        text = " ".join(words)
    return text


class Filler:
    """Fills phrasings with names from one side of the catalog; seeded, so runs repeat exactly."""

    def __init__(self, catalog: Catalog, seed: int, noise: Noise = Noise(),
                 augmentation: Augmentation | None = None) -> None:
        self.catalog = catalog
        self.noise = noise
        self.aug = augmentation
        self.rng = random.Random(seed)
        self.order_ids = catalog.order_ids or tuple(str(10000 + i) for i in range(500))

    def _pool(self, own: tuple[Any, ...], extra: tuple[Any, ...], p: float) -> tuple[Any, ...]:
        if extra and (not own or self.rng.random() < p):
            return extra
        return own

    def _value(self, slot: str) -> tuple[str, str | None]:
        rng, cat, aug = self.rng, self.catalog, self.aug
        if slot == "product":
            p = rng.choice(self._pool(cat.products, aug.products if aug else (), aug.product_p if aug else 0))
            return product_surface(p, rng), p.sku
        if slot == "brand" and (cat.brands or aug):
            b = rng.choice(self._pool(cat.brands, aug.brands if aug else (), aug.name_p if aug else 0))
            return brand_surface(b, rng), b
        if slot == "category" and (cat.categories or aug):
            c = rng.choice(self._pool(cat.categories, aug.categories if aug else (), aug.name_p if aug else 0))
            return category_surface(c, rng), c
        if slot == "attribute" and (cat.attribute_values or aug):
            a = rng.choice(self._pool(cat.attribute_values, aug.attribute_values if aug else (),
                                      aug.name_p if aug else 0))
            return attribute_surface(a, rng), a
        if slot == "order_id":
            o = rng.choice(self.order_ids)
            return order_surface(o, rng), o
        if slot == "money":
            return money_surface(rng), None
        # A catalog without brands/categories/attributes: borrow from the products' own fields.
        p = rng.choice(cat.products)
        fallback = {"brand": p.brand, "category": p.category,
                    "attribute": p.attributes[0][1] if p.attributes else None}.get(slot)
        return (fallback or p.name), fallback

    def fill(self, phrasing: str, intent: str) -> Example:
        rng, noise = self.rng, self.noise
        if self.aug is not None:
            phrasing = add_tail(expand_slots(phrasing, rng), rng)
        lower = rng.random() < noise.lower
        drop = rng.random() < noise.drop_punct
        upper = rng.random() < noise.upper
        parts: list[str] = []
        spans: list[Span] = []
        pos = 0
        cursor = 0
        for m in _SLOT.finditer(phrasing):
            literal = _noisy_literal(phrasing[cursor:m.start()], rng, noise, lower, drop, upper)
            value, node_id = self._value(m.group(1))
            if m.group(1) == "order_id" and literal.endswith("#"):
                # "#{order_id}" in a phrasing: the sign is part of the mention, as in "#10452"
                literal = literal[:-1]
                value = value if value.startswith("#") else "#" + value
            parts.append(literal)
            pos += len(literal)
            if upper:
                value = value.upper()
            parts.append(value)
            spans.append(Span(pos, pos + len(value), SLOT_TYPES[m.group(1)], node_id))
            pos += len(value)
            cursor = m.end()
        parts.append(_noisy_literal(phrasing[cursor:], rng, noise, lower, drop, upper))
        text = "".join(parts)
        if rng.random() < noise.double_space:
            text, spans = _double_a_space(text, spans, rng)
        text, spans = _strip(text, spans)
        return Example(text=text, intent=intent, spans=tuple(spans), phrasing=phrasing)


def _double_a_space(text: str, spans: list[Span], rng: random.Random) -> tuple[str, list[Span]]:
    inside = {i for s in spans for i in range(s.start, s.end)}
    spaces = [i for i, ch in enumerate(text) if ch == " " and i not in inside]
    if not spaces:
        return text, spans
    i = rng.choice(spaces)
    moved = [Span(s.start + (s.start > i), s.end + (s.end > i), s.type, s.node_id) for s in spans]
    return text[:i] + " " + text[i:], moved


def _strip(text: str, spans: list[Span]) -> tuple[str, list[Span]]:
    lead = len(text) - len(text.lstrip())
    out = text.strip()
    return out, [Span(s.start - lead, s.end - lead, s.type, s.node_id) for s in spans]


# -- junk that is out of scope (foreign scripts, emoji, keyboard mashing) ---------------------------
_SCRIPTS: dict[str, tuple[int, int]] = {
    "cjk": (0x4E00, 0x9FFF), "hiragana": (0x3041, 0x3096), "hangul": (0xAC00, 0xD7A3),
    "arabic": (0x0621, 0x064A), "cyrillic": (0x0430, 0x044F), "greek": (0x03B1, 0x03C9),
    "hebrew": (0x05D0, 0x05EA), "devanagari": (0x0905, 0x0939), "thai": (0x0E01, 0x0E2E),
}
_EMOJI = [chr(c) for c in (*range(0x1F600, 0x1F640), *range(0x1F300, 0x1F320), 0x2764, 0x1F44D, 0x1F44E,
                            0x1F525, 0x1F389, 0x2705, 0x274C)]


def _scripts_in(texts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    for t in texts:
        for ch in t:
            for name, (lo, hi) in _SCRIPTS.items():
                if lo <= ord(ch) <= hi:
                    seen.add(name)
    return seen


def junk_examples(n: int, rng: random.Random, skip_scripts: set[str]) -> list[Example]:
    """Out-of-scope messages no phrasing file covers: other scripts, emoji, mashed keys, symbols.

    Scripts that the phrasing files themselves use are skipped, so a model configured for another
    language (say a Chinese BERT trained on Chinese phrasings) is not taught that its own script is
    out of scope.
    """
    scripts = [s for s in _SCRIPTS if s not in skip_scripts]
    out: list[Example] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.45 and scripts:
            lo, hi = _SCRIPTS[rng.choice(scripts)]
            words = ["".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6)))
                     for _ in range(rng.randint(1, 5))]
            sep = "" if rng.random() < 0.4 else " "
            text = sep.join(words) + rng.choice(["", "", "?", "。", "!"])
        elif kind < 0.7:
            text = "".join(rng.choice(_EMOJI) for _ in range(rng.randint(1, 6)))
            if rng.random() < 0.3:
                text = " ".join(text)
        elif kind < 0.9:
            words = ["".join(rng.choice("qwertyuiopasdfghjklzxcvbnm") for _ in range(rng.randint(3, 9)))
                     for _ in range(rng.randint(1, 4))]
            text = " ".join(words)
        else:
            text = "".join(rng.choice("?!.,-_*#@~^") for _ in range(rng.randint(1, 6)))
        out.append(Example(text=text, intent="out_of_scope", phrasing="<junk>"))
    return out


# -- building sets --------------------------------------------------------------------------------
_SLOT_WEIGHT = {"money": 4.0, "attribute": 1.0, "brand": 1.0, "category": 1.0, "product": 0.5, "order_id": 0.3}


def _phrasing_weight(phrasing: str) -> float:
    """Phrasings with the rarer entity types are filled more often (within the intent's budget)."""
    return 1.0 + sum(_SLOT_WEIGHT.get(s, 0.0) for s in set(_SLOT.findall(phrasing)))


def build_examples(
    phrasings: dict[str, list[str]],
    catalog: Catalog,
    *,
    per_intent: int,
    seed: int,
    noise: Noise = Noise(),
    junk_fraction: float = 0.0,
    min_fills: int = 1,
    augmentation: Augmentation | None = None,
) -> list[Example]:
    """About `per_intent` examples for every intent (balanced): each phrasing filled `min_fills`
    times, the rest drawn with more weight on phrasings with rare entity types; identical texts
    are kept once."""
    filler = Filler(catalog, seed, noise, augmentation)
    rng = random.Random(seed + 1)
    scripts = _scripts_in(t for v in phrasings.values() for t in v)
    out: list[Example] = []
    for intent in sorted(phrasings):
        items = list(phrasings[intent])
        if not items:
            continue
        budget = per_intent
        if intent == "out_of_scope" and junk_fraction > 0:
            n_junk = int(per_intent * junk_fraction)
            out.extend(junk_examples(n_junk, rng, scripts))
            budget -= n_junk
        rng.shuffle(items)
        weights = [_phrasing_weight(p) for p in items]
        picks = [p for p in items for _ in range(min_fills)]
        seen: set[str] = set()
        attempts = 0
        while len(seen) < max(budget, len(picks)) and attempts < 3 * max(budget, len(picks)):
            phrasing = picks[attempts] if attempts < len(picks) else rng.choices(items, weights=weights)[0]
            attempts += 1
            ex = filler.fill(phrasing, intent)
            if ex.text and ex.text not in seen:
                seen.add(ex.text)
                out.append(ex)
    rng.shuffle(out)
    return out


def build_eval_examples(
    catalog: Catalog, *, path: Path = EVAL_PHRASINGS, fills: int = 3, seed: int = 2024, noise: Noise = Noise(),
) -> list[Example]:
    """The held-out evaluation set: eval phrasings x held-out names, `fills` per phrasing."""
    phrasings = load_phrasings(path)
    filler = Filler(catalog, seed, noise)
    out: list[Example] = []
    for intent in sorted(phrasings):
        for phrasing in phrasings[intent]:
            n = fills if _SLOT.search(phrasing) else max(1, fills - 1)
            texts: set[str] = set()
            for _ in range(n):
                ex = filler.fill(phrasing, intent)
                if ex.text and ex.text not in texts:
                    texts.add(ex.text)
                    out.append(ex)
    return out


# -- tokenisation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # BIO tag index per token, IGNORE_INDEX on special tokens
    intent: int


def bio_labels(offsets: Sequence[tuple[int, int]], spans: Sequence[Span], special: Sequence[int]) -> list[int]:
    tag_index = {t: i for i, t in enumerate(BIO_TAGS)}
    labels: list[int] = []
    begun: set[int] = set()
    for (s, e), is_special in zip(offsets, special, strict=True):
        if is_special or e <= s:
            labels.append(IGNORE_INDEX)
            continue
        tag = "O"
        for k, span in enumerate(spans):
            if s < span.end and e > span.start:
                tag = ("I-" if k in begun else "B-") + span.type
                begun.add(k)
                break
        labels.append(tag_index[tag])
    return labels


def encode(examples: Sequence[Example], tokenizer: Any, max_length: int) -> list[Encoded]:
    intent_index = {name: i for i, name in enumerate(INTENTS)}
    out: list[Encoded] = []
    batch = 256
    for b in range(0, len(examples), batch):
        chunk = examples[b:b + batch]
        enc = tokenizer([e.text for e in chunk], truncation=True, max_length=max_length,
                        return_offsets_mapping=True, return_special_tokens_mask=True)
        for j, ex in enumerate(chunk):
            if ex.tagged:
                labels = bio_labels(enc["offset_mapping"][j], ex.spans, enc["special_tokens_mask"][j])
            else:
                labels = [IGNORE_INDEX] * len(enc["input_ids"][j])
            out.append(Encoded(list(enc["input_ids"][j]), labels, intent_index[ex.intent]))
    return out

