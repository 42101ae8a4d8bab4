"""Linking evaluation: shopper-style mentions of held-out products, and how often they link right.

Held-out products are the ones the understanding model never saw in training (nlu/catalog.py's
`Catalog.split`), so the figures say how linking does on names it has to find in the graph. For
each, mentions are written the way shoppers write them: the full name in lower case, the name
without the brand, the model line with its variant words ("aurora x2 in black"), the model number
without hyphens or with spaces ("na700x white"), the line with its kind ("nova 5 smartphone 128
gb"), and a keyboard typo in one of those. A mention that names one product must link to exactly
that product (`accuracy`). A model-line-only mention of a line sold in several variants must come
back ambiguous with the product among the candidates (`ambiguity_detection`).

Brands and categories get their own figures (case, typos, singular and plural).
"""

from __future__ import annotations

import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process

from nlu.linking import text as T
from nlu.linking.index import ProductRecord, fuzzy_cutoff, make_line
from nlu.types import Entity


class LinkingExample(BaseModel):
    mention: str
    type: str = "PRODUCT"
    expected: str  # node id
    kind: Literal["unique", "ambiguous"] = "unique"
    style: str = ""
    context: str = ""
    group: list[str] = Field(default_factory=list)  # ambiguous kind: every product of the mentioned line


class LinkingError(BaseModel):
    mention: str
    context: str = ""
    style: str
    expected: str
    got: str | None
    ambiguous: bool
    candidates: list[str] = Field(default_factory=list)


class LinkingReport(BaseModel):
    accuracy: float  # unique product mentions linked to exactly the expected product
    n: int
    correct: int
    ambiguity_detection: float | None  # model-line-only mentions flagged ambiguous, with the line offered
    n_ambiguous: int
    detected: int
    ambiguity_precision: float | None  # share of the offered candidates that belong to the mentioned line
    brand_accuracy: float | None = None
    category_accuracy: float | None = None
    type_accuracy: dict[str, float] = Field(default_factory=dict)  # every non-product type present
    by_style: dict[str, float] = Field(default_factory=dict)
    ms_per_mention: float = 0.0
    errors: list[LinkingError] = Field(default_factory=list)


LinkFn = Callable[[str, str, str], Entity]  # (mention, entity type, context) -> linked entity


def evaluate_linking(linker: Any, examples: Sequence[LinkingExample], *, max_errors: int = 50) -> LinkingReport:
    """Run every example through `linker` (an EntityLinker, or a callable (mention, type, context) ->
    Entity) and report accuracy, ambiguity detection and per-style figures."""
    link: LinkFn = linker if callable(linker) and not hasattr(linker, "link_mention") else (
        lambda m, t, c: linker.link_mention(m, t, context=[c] if c else []))
    per_style: dict[str, list[bool]] = defaultdict(list)
    n = correct = n_amb = detected = 0
    offered = in_line = 0
    typed: dict[str, list[bool]] = defaultdict(list)
    errors: list[LinkingError] = []
    t0 = time.perf_counter()
    for ex in examples:
        ent = link(ex.mention, ex.type, ex.context)
        ids = [c.node_id for c in ent.candidates]
        if ex.type != "PRODUCT":
            ok = ent.node_id is not None and ent.node_id.casefold() == ex.expected.casefold()
            typed[ex.type].append(ok)
        elif ex.kind == "unique":
            ok = ent.node_id == ex.expected
            n += 1
            correct += ok
        else:
            members = set(ex.group) or {ex.expected}
            ok = ent.ambiguous and (ex.expected in ids or bool(members & set(ids)))
            n_amb += 1
            detected += ok
            if ent.ambiguous:
                offered += len(ids)
                in_line += sum(i in members for i in ids)
        per_style[f"{ex.type.lower()}:{ex.style}"].append(ok)
        if not ok and len(errors) < max_errors:
            errors.append(LinkingError(mention=ex.mention, context=ex.context, style=ex.style, expected=ex.expected, got=ent.node_id,
                                       ambiguous=ent.ambiguous, candidates=ids[:5]))
    elapsed = time.perf_counter() - t0

    def rate(xs: list[bool]) -> float | None:
        return round(sum(xs) / len(xs), 4) if xs else None

    return LinkingReport(
        accuracy=round(correct / n, 4) if n else 0.0, n=n, correct=correct,
        ambiguity_detection=round(detected / n_amb, 4) if n_amb else None, n_ambiguous=n_amb, detected=detected,
        ambiguity_precision=round(in_line / offered, 4) if offered else None,
        brand_accuracy=rate(typed.get("BRAND", [])), category_accuracy=rate(typed.get("CATEGORY", [])),
        type_accuracy={t: round(sum(v) / len(v), 4) for t, v in sorted(typed.items()) if v},
        by_style={k: round(sum(v) / len(v), 4) for k, v in sorted(per_style.items())},
        ms_per_mention=round(1000 * elapsed / max(len(examples), 1), 3), errors=errors,
    )


# -- building examples ---------------------------------------------------------------------------
def held_out_records(records: Sequence[ProductRecord]) -> list[ProductRecord]:
    """The products the understanding model holds out of training (nlu/catalog.py's split)."""
    from nlu.catalog import Catalog, ProductName

    cat = Catalog(products=tuple(ProductName(sku=r.sku, name=r.name, brand=r.brand, category=r.category,
                                             attributes=r.attributes) for r in records))
    held = {p.sku for p in cat.split()[1].products}
    return [r for r in records if r.sku in held]


_KEYBOARD = {
    "a": "qsz", "b": "vgn", "c": "xdv", "d": "sfe", "e": "wrd", "f": "dgr", "g": "fht", "h": "gjy",
    "i": "uok", "j": "hkn", "k": "jlm", "l": "kop", "m": "nk", "n": "bmj", "o": "ipl", "p": "ol",
    "q": "wa", "r": "etf", "s": "adw", "t": "ryg", "u": "yij", "v": "cbf", "w": "qes", "x": "zcs",
    "y": "tuh", "z": "xas",
}


def typo(text: str, rng: random.Random) -> str:
    """One keyboard slip (swap, drop, double, neighbouring key) inside a word of five or more letters."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.random()
    if kind < 0.3:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind < 0.55:
        w = w[:j] + w[j + 1:]
    elif kind < 0.75:
        w = w[:j] + w[j] + w[j:]
    else:
        w = w[:j] + rng.choice(_KEYBOARD.get(w[j].lower(), w[j])) + w[j + 1:]
    words[i] = w
    return " ".join(words)


def _model_number_forms(token: str) -> list[str]:
    parts = [p for p in re.split(r"[-/\s]", token) if p]
    if len(parts) == 1:
        parts = re.findall(r"[A-Za-z]+|\d+[A-Za-z]*", token) or [token]
    return sorted({"".join(parts).lower(), " ".join(parts).lower(), "".join(parts).upper()})


def build_examples(records: Sequence[ProductRecord], held_out: Sequence[ProductRecord] | None = None, *,
                   brands: Sequence[str] = (), categories: Sequence[str] = (), per_product: int = 3,
                   seed: int = 2024) -> list[LinkingExample]:
    """Shopper-style mentions of the `held_out` products (default: the NLU's held-out split of
    `records`), `per_product` naming one product each plus one line-only mention for lines sold
    in several variants; and a few mentions of every brand and category."""
    held = list(held_out) if held_out is not None else held_out_records(records)
    groups: dict[tuple[str, ...], list[ProductRecord]] = defaultdict(list)
    for r in records:
        groups[r.line_key].append(r)
    lines = {k: make_line(0, v) for k, v in groups.items()}
    carriers = _WordCarriers(records)

    def names_only(mention: str, sku: str) -> bool:
        return carriers(mention) <= {sku}
    out: list[LinkingExample] = []
    for r in sorted(held, key=lambda r: r.sku):
        rng = random.Random(f"{seed}:{r.sku}")
        line = lines[r.line_key]
        display = _display_values(r, line.variants_of(r.sku))
        # Only mentions that name this product alone: its variant words must single it out.
        others = [s for s in line.skus if s != r.sku]
        unique_by_values = not others or all(line.variants_of(s) != line.variants_of(r.sku) for s in others)
        if not unique_by_values:
            continue
        var = " ".join(display).lower()
        line_name = line.name
        kind = (r.category or "").split(" & ")[0]
        kind_word = kind.split()[-1] if kind else ""
        own = re.split(r"\s+for\s+", line_name, maxsplit=1, flags=re.I)[0]
        models = [t for t in own.split() if T.is_model_number(T.compact(t))]
        styles: dict[str, str] = {
            "full_lower": r.name.lower(),
            "no_brand": re.sub(r"[,()]", "", r.without_brand(r.name)).lower(),
            "line_variant": f"{line_name} {var}".strip().lower() if others else line_name.lower(),
            "line_in_variant": f"the {line_name} in {var}".lower() if others and var else f"the {line_name}".lower(),
            "brand_line_variant": f"{r.brand or ''} {line_name} {var}".strip().lower(),
            "line_kind": f"{line_name} {_singular(kind_word)} {var}".strip().lower(),
        }
        if models:
            form = rng.choice(_model_number_forms(models[0]))
            styles["model_number"] = f"{line_name.replace(models[0], form)} {var}".strip()
        # e.g. without the brand, another brand's line of the same name may have this variant too
        styles = {k: v for k, v in styles.items() if names_only(v, r.sku)}
        if not styles:
            continue
        bases = [k for k in ("line_variant", "brand_line_variant", "no_brand", "full_lower") if k in styles]
        base_style = rng.choice(bases[:3])
        styles["typo"] = typo(styles[base_style], rng)
        if styles["typo"] == styles[base_style]:
            del styles["typo"]
        names = sorted(styles)
        rng.shuffle(names)
        must = [s for s in ("typo", "model_number") if s in styles]
        chosen = list(dict.fromkeys(must[:1] + names))[:per_product]
        for st in chosen:
            out.append(LinkingExample(mention=styles[st], expected=r.sku, kind="unique", style=st))
        if others:
            mention = rng.choice([line_name, line_name.lower(), f"the {line_name}", f"{r.brand} {line_name}"])
            out.append(LinkingExample(mention=mention, expected=r.sku, kind="ambiguous", style="line_only",
                                      group=list(line.skus)))
    for b in brands:
        rng = random.Random(f"{seed}:brand:{b}")
        for st, m in (("lower", b.lower()), ("typo", typo(b, rng).lower())):
            out.append(LinkingExample(mention=m, type="BRAND", expected=b, style=st))
    for c in categories:
        rng = random.Random(f"{seed}:category:{c}")
        words = c.split()
        sing = " ".join(words[:-1] + [_singular(words[-1])]) if words else c
        for st, m in (("lower", c.lower()), ("singular", sing.lower()), ("typo", typo(c, rng).lower())):
            out.append(LinkingExample(mention=m, type="CATEGORY", expected=c, style=st))
    return out


class _WordCarriers:
    """Which products a mention may mean: those carrying every word of it (name, brand, category,
    model line, attribute values; a misspelt word stands for the words one typo away; a word no
    product has is ignored). An accessory is only meant when the mention names the accessory
    itself, not just the device it fits ("aurora x2" is not the travel case for it)."""

    def __init__(self, records: Sequence[ProductRecord]) -> None:
        self.postings: dict[str, set[str]] = defaultdict(set)
        self.own: dict[str, set[str]] = {}
        self.fits: dict[str, set[str]] = {}
        for r in records:
            own_part, _, for_part = r.name.partition(" for ")
            own = set(T.content_tokens(" ".join([own_part, r.brand or "", *r.values, r.sku]))) | {T.compact(r.sku)}
            fits = set(T.content_tokens(for_part)) - own
            self.own[r.sku], self.fits[r.sku] = own, fits
            words = own | fits | set(T.content_tokens(f"{r.category or ''} {r.line_name}"))
            words |= {T.compact(w) for w in r.line_name.split()}
            for t in words:
                self.postings[t].add(r.sku)
        self.vocab = list(self.postings)

    def __call__(self, mention: str) -> set[str]:
        toks = _merge(T.content_tokens(mention), self.postings)
        hits: set[str] | None = None
        used: list[set[str]] = []
        for t in toks:
            carriers = set(self.postings.get(t, ()))
            cut = fuzzy_cutoff(t)
            forms = {t}
            if cut is not None and not carriers:  # a misspelt word: the words about one typo away
                for v, _s, _ in process.extract(t, self.vocab, scorer=fuzz.ratio, score_cutoff=70, limit=5):
                    carriers |= self.postings[v]
                    forms.add(v)
            if not carriers:
                continue  # a word no product has says nothing about which one
            used.append(forms)
            hits = carriers if hits is None else hits & carriers
        return {s for s in hits or set()
                if not self.fits[s] or any(forms & (self.own[s] - self.fits[s]) for forms in used)}


def _merge(toks: list[str], vocab: dict[str, set[str]]) -> list[str]:
    from nlu.linking.index import merge_split_tokens

    return merge_split_tokens(toks, vocab)


def examples_from_mentions(records: Sequence[ProductRecord],
                           mentions: Sequence[tuple[str, str, str, str]]) -> list[LinkingExample]:
    """(mention, type, expected node id, message) from any generator (the understanding model's
    held-out set, logs) as examples: a product mention that some other product also carries every
    word of is expected to come back ambiguous with the expected product's line offered."""
    carriers = _WordCarriers(records)
    by_sku = {r.sku: r for r in records}
    members: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for r in records:
        members[r.line_key].append(r.sku)
    out: list[LinkingExample] = []
    for mention, typ, expected, message in mentions:
        if typ == "PRODUCT" and expected in by_sku:
            r = by_sku[expected]
            hits = carriers(mention) | {expected}
            # The exact name of a model line means that line, even if other names contain it
            # ("Aurora" is the Pulsewave Aurora, not the Nordic Audio Aurora X2).
            line_names = {T.key(a) for a in (r.line_name, f"{r.brand or ''} {r.line_name}", r.base_name,
                                               r.without_brand(r.base_name))}
            if T.key(mention) in line_names:
                hits = set(members[r.line_key])
            elif T.key(mention) in (T.key(r.name), T.key(r.without_brand(r.name))):
                hits = {expected}  # its full name
            if len(hits) > 1:
                group = sorted(hits | set(members[r.line_key]))
                out.append(LinkingExample(mention=mention, type=typ, expected=expected, kind="ambiguous",
                                          style="surface_ambiguous", context=message, group=group))
                continue
        out.append(LinkingExample(mention=mention, type=typ, expected=expected, style="surface", context=message))
    return out


def examples_from_nlu_eval(store: Any, *, fills: int = 2, seed: int = 2024) -> list[LinkingExample]:
    """The understanding model's held-out evaluation set (nlu/dataset.py: held-out phrasings filled
    with held-out names by its own shopper-style generator) as linking examples on gold spans: an
    independent check of the figures from `build_examples`. MONEY spans have no node and are left out."""
    from kg.queries import linking as queries
    from kg.scan import scan
    from nlu.catalog import catalog_from_store
    from nlu.dataset import build_eval_examples
    from nlu.linking.linker import blank_spans

    records = sorted((ProductRecord.from_row(r) for rows in scan(store, queries.PRODUCTS_PAGE, limit=5000)
                      for r in rows), key=lambda r: r.sku)
    held = catalog_from_store(store).split()[1]
    mentions = []
    for ex in build_eval_examples(held, fills=fills, seed=seed):
        for sp in ex.spans:
            if sp.node_id:  # the message as EntityLinker.link_entities sees it: other names blanked
                others = [(o.start, o.end) for o in ex.spans if o is not sp and o.type in ("PRODUCT", "BRAND", "CATEGORY")]
                mentions.append((ex.text[sp.start:sp.end], sp.type, sp.node_id, blank_spans(ex.text, others)))
    return examples_from_mentions(records, mentions)


def _display_values(r: ProductRecord, value_tokens: Sequence[tuple[str, tuple[str, ...]]]) -> list[str]:
    """The product's own spelling of its variant values, in attribute order."""
    wanted = {" ".join(v) for _k, v in value_tokens}
    return [v for _k, v in r.attributes if " ".join(T.content_tokens(v)) in wanted]


def _singular(word: str) -> str:
    w = word
    if w.lower().endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if re.search(r"(ches|shes|sses|xes)$", w.lower()):
        return w[:-2]
    if w.lower().endswith("s") and not w.lower().endswith(("ss", "us", "is")):
        return w[:-1]
    return w
