"""Coreference, ellipsis and clarification: turning one message into a complete question.

Given what the model understood (intent, linked entities) and the dialogue state, `resolve`
decides which intent is being asked and which graph nodes it is about:

- a pending clarification is answered by an ordinal ("the second"), a comparative ("the cheaper
  one"), a distinguishing value ("the black one"), a name or an id; the question that was asked
  before is then answered with the chosen node;
- pronouns and bare follow-ups ("is it in stock?", "that one") take the node last mentioned;
- ellipsis ("and in black?", "what about the Bose ones?") keeps the previous intent and swaps or
  adds the entity the message brings;
- an ambiguous mention that the context settles (the variant just discussed, an attribute in the
  same message) is resolved silently; otherwise it is reported for a clarifying question.

Entities taken from the conversation are reported with `source="context"` and no offsets. This
module reads state and returns a `Resolution`; it never talks to the graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nlu.labels import FAMILY_OF
from nlu.types import Candidate, Entity, Understanding
from qa.registry import spec_for
from qa.state import DialogueState, PendingClarification, Ref
from qa.text import FILLER, covers, extract_address, has_phrase, norm, word_matches, words

CONTENT_FAMILIES = ("products", "orders", "policies")

_ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
    "fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "last": -1, "latter": -1, "former": 0,
}
_ORDINAL_RE = re.compile(r"\b(" + "|".join(_ORDINALS) + r")\b")
_NUMBER_PICK_RE = re.compile(
    r"^\s*(?:(?:the|option|choice|item|number|nr\.?|no\.?|#)\s*)*([1-9])(?:st|nd|rd|th)?"
    r"(?:\s*(?:one|option|please|pls|thanks|thank you|\)|\.))*\s*[.!?]*\s*$")
# "both", "all of them", "either": every item of the list just offered.
_ALL_RE = re.compile(r"\b(both|all|each|either|every one|everything|the two|the three)\b")
_CHEAPER_RE = re.compile(r"\b(cheaper|cheapest|less expensive|least expensive|lower priced|budget one)\b")
_DEARER_RE = re.compile(r"\b(more expensive|most expensive|pricier|priciest|dearer|premium one)\b")
_PRONOUN_RE = re.compile(
    r"\b(it|its|it's|this|that|these|those|them|they|this one|that one|same one|the same|the one|one)\b"
)
_ELLIPSIS_RE = re.compile(
    r"^\s*(?:ok(?:ay)?[, ]+|so[, ]+)?(and|also|what about|how about|what of|same for|same question for|"
    r"and what about|and how about|and for|and in|and the|plus)\b"
)
_NEGATION_ONLY_RE = re.compile(r"^\s*(no|nope|nah|never ?mind|cancel|forget it|stop)\b")

def ref_to_entity(ref: Ref, score: float = 1.0) -> Entity:
    return Entity(type=ref.type, text=ref.name, node_id=ref.node_id, score=score, source="context")


@dataclass
class Resolution:
    intent: str
    confidence: float
    entities: list[Entity]
    ambiguous: Entity | None = None  # a mention the context could not settle
    from_clarification: PendingClarification | None = None  # the clarification this turn answered
    clarification_dropped: bool = False
    clarification_repeat: PendingClarification | None = None  # ask again (the answer did not match)
    address: str | None = None  # a new address given in answer to an address clarification
    elliptical: bool = False
    notes: list[str] = field(default_factory=list)


# -- picking from a list --------------------------------------------------------------------------
def pick_from(message: str, items: list[Ref], entities: list[Entity] | None = None) -> Ref | None:
    """The item of `items` the message designates, or None."""
    if not items:
        return None
    text = norm(message)
    entities = entities or []
    # An id or linked node named in the message.
    ids = {e.node_id for e in entities if e.node_id} | {norm(e.text).lstrip("#") for e in entities}
    for it in items:
        if it.node_id and (it.node_id in ids or has_phrase(text, it.node_id.lower())):
            return it
    m = _NUMBER_PICK_RE.match(text)
    if m and int(m.group(1)) <= len(items):
        return items[int(m.group(1)) - 1]
    m = _ORDINAL_RE.search(text)
    if m:
        idx = _ORDINALS[m.group(1)]
        if -len(items) <= idx < len(items):
            return items[idx]
    priced = [it for it in items if it.price is not None]
    if len(priced) >= 2:
        if _CHEAPER_RE.search(text):
            return min(priced, key=lambda it: it.price or 0.0)
        if _DEARER_RE.search(text):
            return max(priced, key=lambda it: it.price or 0.0)
    return _pick_by_words(text, items, entities)


def _distinguishing(items: list[Ref]) -> list[tuple[set[str], set[str]]]:
    """Per item, the words of its name and of its values (a colour, a format, a status) that not
    every item shares."""
    names = [set(words(it.name)) - FILLER for it in items]
    values = [{w for v in it.values if v for w in words(v)} | set(words(it.status or "")) for it in items]
    common_names = set.intersection(*names) if names else set()
    common_values = set.intersection(*values) if values else set()
    return [(n - common_names, v - common_values - n) for n, v in zip(names, values, strict=True)]


def _word_scores(text: str, items: list[Ref], entities: list[Entity]) -> list[int]:
    """How well the message's words name each item: a distinguishing word of its name counts
    twice, one of its values once; a typo or a plural still counts ("the hardcovr", "ebook")."""
    said = {w for w in words(text) if w not in FILLER and w not in _STOP}
    for e in entities:
        if e.type in ("ATTRIBUTE", "BRAND", "PRODUCT"):
            said |= {w for w in words(e.node_id if e.type == "ATTRIBUTE" and e.node_id else e.text)
                     if w not in FILLER and w not in _STOP}
    scores = []
    for name_words, value_words in _distinguishing(items):
        score = 0
        for w in said:
            if any(word_matches(w, n) for n in name_words):
                score += 2
            elif any(word_matches(w, v) for v in value_words):
                score += 1
        scores.append(score)
    return scores


def _pick_by_words(text: str, items: list[Ref], entities: list[Entity]) -> Ref | None:
    scores = _word_scores(text, items, entities)
    best = max(scores)
    if best > 0 and scores.count(best) == 1:
        return items[scores.index(best)]
    return None


def narrow_by_words(text: str, items: list[Ref], entities: list[Entity] | None = None) -> list[Ref]:
    """The items the message's words name best, when they name some but not all ("orient
    express" among four crime novels): the list to ask about again, or to answer for at once."""
    scores = _word_scores(text, items, entities or [])
    best = max(scores, default=0)
    tied = [it for it, sc in zip(items, scores, strict=True) if best > 0 and sc == best]
    return tied if 1 < len(tied) < len(items) else []


def wants_all(message: str, items: list[Ref]) -> bool:
    """"both", "all of them", "either": a short answer that takes every item offered."""
    text = norm(message)
    return len(items) >= 2 and len(text.split()) <= 6 and bool(_ALL_RE.search(text)) and \
        pick_from(message, items) is None


_STOP = {"gb", "us", "size"}


def _without_other_products(message: str, entities: list[Entity], e: Entity) -> str:
    """The message with the other product mentions (linked, or with candidates) blanked: what it
    says about `e` alone."""
    text = message
    others = [o for o in entities if o is not e and o.type == "PRODUCT" and (o.node_id or o.candidates)
              and o.start is not None and o.end is not None]
    for o in sorted(others, key=lambda o: -(o.start or 0)):
        text = text[: o.start] + " " + text[o.end:]
    return norm(text)


def _around(message: str, entities: list[Entity], e: Entity) -> str:
    """What the message says right around a mention: its text and the mentions chained next to it
    (a few characters apart: "brightleaf | clip-on | reading light", "Nova 5 128 GB | Graphite"),
    other products (linked or with candidates) left out."""
    if e.start is None or e.end is None:
        return norm(e.text)
    spans = [(o.start, o.end) for o in entities if o.start is not None and o.end is not None and
             o is not e and not (o.type == "PRODUCT" and (o.node_id or o.candidates))]
    lo, hi = e.start, e.end
    grown = True
    while grown:
        grown = False
        for start, end in spans:
            if not (lo <= start and end <= hi) and (0 <= start - hi <= 5 or 0 <= lo - end <= 5):
                lo, hi, grown = min(lo, start), max(hi, end), True
    # and up to two plain words right after it ("dune | messiah?"), up to a filler word or a stop
    end = hi
    for m in re.finditer(r"\S+", message[end:]):
        word = m.group()
        bare = word.rstrip("?!.,;:)")
        at = end + m.start()
        if message[hi:at].strip() or not bare or norm(bare) in FILLER or \
                any(o.start is not None and o.start <= at < (o.end or 0) for o in entities if o is not e):
            break
        hi = at + len(bare)
        if bare != word or len(norm(message[end:hi]).split()) >= 2:
            break
    return norm(message[lo:hi])


def _linked_beside(e: Entity, entities: list[Entity]) -> set[str]:
    """Products linked by a product mention a few characters from `e`."""
    if e.start is None or e.end is None:
        return set()
    return {o.node_id for o in entities if o is not e and o.type == "PRODUCT" and o.node_id and
            o.start is not None and o.end is not None and (0 <= o.start - e.end <= 5 or 0 <= e.start - o.end <= 5)}


def _generic_mentions(entities: list[Entity], message: str) -> list[Entity]:
    """A product mention the linker settled on one product although its words fit several of its
    candidates equally ("the charger", "the lumen notebook"), and nothing else in the message
    (other product mentions left out) tells them apart, is ambiguous among those: a clarifying
    question, never a guess."""
    out = []
    for e in entities:
        text = _without_other_products(message, entities, e)
        if e.type == "PRODUCT" and e.node_id and not e.ambiguous and e.source == "message" and \
                len(e.candidates) >= 2:
            mention = words(e.text)
            fitting = [c for c in e.candidates if covers(mention, words(c.name))]
            chosen = next((c for c in fitting if c.node_id == e.node_id), None)
            if len(fitting) >= 2 and chosen is not None and norm(chosen.name) != norm(e.text):
                refs = [Ref(type="PRODUCT", node_id=c.node_id, name=c.name) for c in fitting]
                picked = _pick_by_words(text, refs, [])
                if picked is None or picked.node_id != e.node_id:
                    e = e.model_copy(update={"node_id": None, "ambiguous": True, "candidates": fitting})
        out.append(e)
    return out


# -- the resolver ---------------------------------------------------------------------------------
def resolve(u: Understanding, state: DialogueState, *, threshold: float) -> Resolution:
    text = norm(u.text)
    entities = [e.model_copy() for e in u.entities]
    intent, conf = u.intent.name, u.intent.confidence

    pending = state.pending_clarification
    if pending is not None:
        res = _answer_clarification(u, state, pending, entities, threshold)
        if res is not None:
            return res

    # Ellipsis: keep the previous content intent unless the message names its own.
    elliptical = False
    last = state.last_intent
    if last and FAMILY_OF.get(last) in CONTENT_FAMILIES and intent not in ("affirm", "deny") and \
            not _small_talk(intent):
        cued = bool(_ELLIPSIS_RE.search(text))
        low = conf < threshold
        bare = bool(entities) and len(text.split()) <= 5 and (low or intent == "out_of_scope")
        if cued or bare:
            # A message with words that ask for its own intent keeps it ("and how much is it?").
            spec = spec_for(intent)
            own_cue = spec.cue if spec is not None else None
            if not (own_cue and own_cue.search(text) and conf >= threshold):
                intent, conf = last, max(conf, threshold)
            elliptical = True

    family = FAMILY_OF.get(intent)
    entities = _settle_ambiguity(_generic_mentions(entities, u.text), state, text, u.text)
    entities = _fill_from_context(intent, family, entities, state, text, elliptical)
    ambiguous = next((e for e in entities if e.ambiguous and e.candidates and not e.node_id), None)
    return Resolution(intent=intent, confidence=conf, entities=entities, ambiguous=ambiguous,
                      clarification_dropped=pending is not None, elliptical=elliptical)


def _answer_clarification(u: Understanding, state: DialogueState, pending: PendingClarification,
                          entities: list[Entity], threshold: float) -> Resolution | None:
    text = norm(u.text)
    intent = u.intent.name
    resolved_entities = [ref_to_entity(r) for r in pending.resolved]
    listed_ids = {c.node_id for c in pending.candidates}
    elsewhere = any(e.type == pending.entity_type and (e.node_id or e.candidates) and
                    not ({e.node_id} | {c.node_id for c in e.candidates}) & listed_ids for e in entities)
    if pending.candidates and not elsewhere and not _NEGATION_ONLY_RE.match(text):
        # "2", "the second", "both", a distinguishing word, a partial name or a typo: an answer to
        # the bot's own list, whatever the model made of so short a message ("2" reads as deny).
        # (A mention of something not on the list is a new request instead.)
        chosen_refs = [pick_from(u.text, pending.candidates, entities)]
        if chosen_refs[0] is None and wants_all(u.text, pending.candidates):
            chosen_refs = list(pending.candidates)
        if chosen_refs[0] is not None:
            return Resolution(intent=pending.intent, confidence=pending.confidence,
                              entities=resolved_entities + [ref_to_entity(r) for r in chosen_refs if r is not None],
                              from_clarification=pending)
        narrowed = narrow_by_words(u.text, pending.candidates, entities)
        if narrowed and pending.entity_type == "PRODUCT":
            still = Entity(type="PRODUCT", text=pending.mention or u.text, ambiguous=True, source="context",
                           candidates=[Candidate(node_id=r.node_id or "", label=r.label or "Product", name=r.name,
                                                 score=1.0) for r in narrowed])
            return Resolution(intent=pending.intent, confidence=pending.confidence,
                              entities=resolved_entities + [still], from_clarification=pending, ambiguous=still)
    if intent == "deny" or _NEGATION_ONLY_RE.match(text):
        return None  # the question is dropped; the turn goes on as a plain deny or a new question

    if pending.kind == "address":
        address = extract_address(u.text, whole_message=True)
        if address:
            return Resolution(intent=pending.intent, confidence=pending.confidence,
                              entities=resolved_entities, from_clarification=pending, address=address)
    elif pending.candidates:
        chosen = pick_from(u.text, pending.candidates, entities)
        if chosen is None:  # a linked mention of the kind asked for, or an ambiguous one among the candidates
            for e in entities:
                if e.type == pending.entity_type and e.node_id and \
                        any(c.node_id == e.node_id for c in pending.candidates):
                    chosen = next(c for c in pending.candidates if c.node_id == e.node_id)
        if chosen is not None:
            picked = ref_to_entity(chosen)
            return Resolution(intent=pending.intent, confidence=pending.confidence,
                              entities=resolved_entities + [picked], from_clarification=pending)
    else:  # a missing slot: any linked entity of the asked type answers it
        given = [e for e in entities if e.type == pending.entity_type and (e.node_id or e.candidates)]
        if pending.entity_type == "PRODUCT":
            given += [e for e in entities if e.type in ("BRAND", "CATEGORY") and e.node_id]
        if pending.entity_type == "ORDER_ID":
            given = [e for e in entities if e.type == "ORDER_ID"]
        if given:
            ents = resolved_entities + given
            ambiguous = next((e for e in given if e.ambiguous and e.candidates and not e.node_id), None)
            return Resolution(intent=pending.intent, confidence=pending.confidence, entities=ents,
                              from_clarification=pending, ambiguous=ambiguous)

    # No answer to the question: a clear new question drops it, anything else asks again (twice).
    confident = u.intent.confidence >= threshold
    new_topic = FAMILY_OF.get(intent) != "conversation" and confident and len(text.split()) > 2
    chitchat = _small_talk(intent) and confident
    if new_topic or chitchat or pending.attempts >= 1:
        return None
    return Resolution(intent=pending.intent, confidence=pending.confidence, entities=resolved_entities,
                      clarification_repeat=pending.model_copy(update={"attempts": pending.attempts + 1}))


def _small_talk(intent: str) -> bool:
    spec = spec_for(intent)
    return spec is not None and spec.small_talk


def _settle_ambiguity(entities: list[Entity], state: DialogueState, text: str, message: str = "") -> list[Entity]:
    """Resolve an ambiguous mention when the context or the message itself picks one candidate."""
    out = []
    attrs = [e for e in entities if e.type == "ATTRIBUTE"]
    for e in entities:
        if e.ambiguous and e.candidates and not e.node_id:
            ids = [c.node_id for c in e.candidates]
            last = state.last_entities.get(e.type)
            listed = [r.node_id for r in state.last_list]
            choice = None
            if attrs:
                narrowed = [c for c in e.candidates
                            if all(has_phrase(c.name.lower(), norm(a.node_id or a.text)) for a in attrs)]
                if len(narrowed) == 1:
                    choice = narrowed[0]
            if choice is None:  # a piece of a name whose other piece was linked ("greenfield | hose reel")
                beside = [c for c in e.candidates if c.node_id in _linked_beside(e, entities)]
                if len(beside) == 1:
                    choice = beside[0]
            if choice is None:  # the rest of the message names one ("the brightleaf clip-on reading light")
                picked = _pick_by_words(_around(message, entities, e) if message else text,
                                        [Ref(type=e.type, node_id=c.node_id, name=c.name) for c in e.candidates], [])
                if picked is not None and picked.node_id is not None:
                    choice = e.candidates[ids.index(picked.node_id)]
            if choice is None and last is not None and last.node_id in ids:
                choice = e.candidates[ids.index(last.node_id)]
            if choice is None:
                in_list = [c for c in e.candidates if c.node_id in listed]
                if len(in_list) == 1:
                    choice = in_list[0]
            if choice is not None:
                e = e.model_copy(update={"node_id": choice.node_id, "score": choice.score, "ambiguous": False})
        out.append(e)
    return out


def _fill_from_context(intent: str, family: str | None, entities: list[Entity], state: DialogueState,
                       text: str, elliptical: bool) -> list[Entity]:
    last = state.last_entities
    types = {e.type for e in entities}
    out = list(entities)
    pronoun = bool(_PRONOUN_RE.search(text))

    def add(ref: Ref | None) -> None:
        if ref is not None and not any(e.node_id == ref.node_id and e.type == ref.type for e in out):
            out.append(ref_to_entity(ref))

    if family == "products":
        # "the first one", "the cheaper one": an item of what was just listed.
        if "PRODUCT" not in types and state.last_list and state.last_list[0].type == "PRODUCT":
            picked = pick_from(text, state.last_list, entities) if (
                _ORDINAL_RE.search(text) or _CHEAPER_RE.search(text) or _DEARER_RE.search(text)
                or _NUMBER_PICK_RE.match(text)) else None
            if picked is not None:
                add(picked)
                types.add("PRODUCT")
        if intent == "product_compare":
            have = [e for e in out if e.type == "PRODUCT"]
            if len(have) < 2 and last.get("PRODUCT") is not None:
                add(last["PRODUCT"])
            if len([e for e in out if e.type == "PRODUCT"]) < 2 and len(state.last_list) >= 2 and \
                    re.search(r"\b(them|these|those|both|the two)\b", text):
                for r in state.last_list[:2]:
                    add(r)
            return out
        if "PRODUCT" in types:
            return out
        if types & {"BRAND", "CATEGORY"}:
            # "what about the Bose ones?" after a product: the brand swaps, the category stays.
            if elliptical and "CATEGORY" not in types:
                prev = last.get("PRODUCT")
                if prev is not None and prev.category:
                    out.append(Entity(type="CATEGORY", text=prev.category, node_id=prev.category, score=1.0,
                                      source="context"))
                elif last.get("CATEGORY") is not None:
                    add(last["CATEGORY"])
            return out
        # "is it in stock?", "and in black?", "how much?": the product last mentioned.
        if last.get("PRODUCT") is not None:
            add(last["PRODUCT"])
        elif elliptical or pronoun or not types - {"ATTRIBUTE", "MONEY"}:
            for t in ("BRAND", "CATEGORY"):
                add(last.get(t))
        return out

    if family == "orders":
        if "ORDER_ID" not in types:
            if state.last_list and state.last_list[0].type == "ORDER_ID" and (
                    _ORDINAL_RE.search(text) or _NUMBER_PICK_RE.match(text)):
                add(pick_from(text, state.last_list, entities))
            elif last.get("ORDER_ID") is not None:
                add(last["ORDER_ID"])
        return out

    if family == "policies" and (pronoun or elliptical):
        # "and can I still return it?": the product or order the conversation is about.
        if not types & {"PRODUCT", "BRAND", "CATEGORY", "ORDER_ID"}:
            recent = _most_recent_kind(state)
            spec = spec_for(intent)
            if recent == "ORDER_ID" and spec is not None and spec.order_context:
                add(last.get("ORDER_ID"))
            elif last.get("PRODUCT") is not None:
                add(last["PRODUCT"])
            elif last.get("ORDER_ID") is not None:
                add(last.get("ORDER_ID"))
    return out


def _most_recent_kind(state: DialogueState) -> str | None:
    """Whether the conversation was last about an order or a product (by the last intent's family)."""
    fam = FAMILY_OF.get(state.last_intent or "")
    if fam == "orders":
        return "ORDER_ID"
    if fam == "products":
        return "PRODUCT"
    return None
