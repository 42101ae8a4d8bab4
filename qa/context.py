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
  same message) is resolved silently; otherwise it is reported for a clarifying question;
- a question about a field of a product ("who supplies it?", "how many pages does X have?",
  qa/fields.py) goes to the intent that answers that field, whatever the model guessed, when a
  product is at hand (named, or the one the conversation is about); "same question for Y"
  carries the previous question's field to Y;
- "which of the two is cheaper?" compares the products the conversation has been about.

Entities taken from the conversation are reported with `source="context"` and no offsets. This
module reads state and returns a `Resolution`; the graph is read only through the field resolver
it is given (qa/fields.py, which caches the shop's field names per catalog version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nlu.labels import FAMILY_OF
from nlu.types import Candidate, Entity, Understanding
from qa.fields import DETAILS, PHRASE_W, FieldAsk, FieldResolver
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
# "what about X?", "same for X": strong enough to carry the question even when the model read the
# message as small talk ("what about never let me go?" as a goodbye, "same for X please" as a yes).
_STRONG_ELLIPSIS_RE = re.compile(
    r"^\s*(?:ok(?:ay)?[, ]+|so[, ]+)?(what about|how about|what of|same for|same question for|same thing for|"
    r"and what about|and how about|and for|and the same for)\b"
)
# "which of the two is cheaper?", "so which one's better": a comparison of what was discussed.
_WHICH_COMPARE_RE = re.compile(
    r"\b(which|what)\b(?: one| ones| of (?:the|these|those|them)(?: two| both)?| of them| is| one's| would you)?.*"
    r"\b(cheaper|cheapest|less expensive|least expensive|more expensive|most expensive|pricier|dearer|better|best|"
    r"higher rated|better rated|longer|bigger|smaller|lighter|heavier|newer|older)\b"
)
_ORDER_WORD_RE = re.compile(r"\b(order|orders|parcel|package|shipment|delivery|invoice|refund)\b")
_TWO_RE = re.compile(r"\b(them|these|those|both|the two|either|which one|which of|which is)\b")
RECENT_PRODUCTS = 5

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
    asked_field: FieldAsk | None = None  # the product field asked about (qa/fields.py), or carried
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
def resolve(u: Understanding, state: DialogueState, *, threshold: float,
            fields: FieldResolver | None = None) -> Resolution:
    text = norm(u.text)
    entities = [e.model_copy() for e in u.entities]
    intent, conf = u.intent.name, u.intent.confidence

    # Similarity alone routes only a question the model did not place (or placed in product_details),
    # so the encoder runs only for those; names, phrasings and values are looked for in every message.
    details = spec_for(DETAILS)
    generic = details is not None and details.cue is not None and bool(details.cue.search(text))  # "tell me about"
    similar = (intent in (DETAILS, "out_of_scope") or conf < threshold) and not generic
    asked = fields.detect(u.text, entities, embeddings=similar) if fields is not None else None
    named = _names_product(entities)

    pending = state.pending_clarification
    # "who wrote the Goldfinch?" while "which Sapiens?" waits: a new question, not an answer
    new_question = asked is not None and asked.source in ("name", "phrase") and any(
        e.type == "PRODUCT" and e.source == "message" and (e.node_id or e.candidates) and
        not _among(e, pending.candidates) for e in entities) if pending is not None else False
    if pending is not None and not new_question:
        res = _answer_clarification(u, state, pending, entities, threshold)
        if res is not None and res.clarification_repeat is None:
            if res.intent in ("product_details", "product_price", "product_availability", "product_warranty") \
                    and fields is not None:
                # the question that was asked keeps its field ("the paperback" answers "which one?")
                own = asked if asked is not None and asked.strong and asked.source != "value" else None
                found = own or _previous_field(state, fields, "", same_intent=False)
                res.asked_field = found if found is not None and found.intent == res.intent else None
            return res
        if asked is not None and asked.source != "value" and pending.candidates and \
                pending.entity_type == "PRODUCT" and not named:
            # "who's the author?" while "which one?" waits: asked of every candidate (answered at once
            # when they agree, asked again when they differ)
            listed = Entity(type="PRODUCT", text=pending.mention or pending.candidates[0].name, ambiguous=True,
                            candidates=[Candidate(node_id=c.node_id or "", label="Product", name=c.name, score=1.0)
                                        for c in pending.candidates if c.node_id])
            ents = [ref_to_entity(r) for r in pending.resolved] + [listed]
            return Resolution(intent=asked.intent, confidence=max(conf, threshold), entities=ents, ambiguous=listed,
                              clarification_dropped=True, asked_field=asked)
        if res is not None:
            return res

    # Ellipsis: keep the previous content intent unless the message names its own.
    elliptical = False
    last = state.last_intent
    carried: FieldAsk | None = None
    strong_cue = bool(_STRONG_ELLIPSIS_RE.search(text)) and named
    if last and FAMILY_OF.get(last) in CONTENT_FAMILIES and \
            ((intent not in ("affirm", "deny") and not _small_talk(intent)) or strong_cue):
        cued = bool(_ELLIPSIS_RE.search(text))
        low = conf < threshold
        bare = bool(entities) and len(text.split()) <= 5 and (low or intent == "out_of_scope")
        if cued or bare:
            # A message with words that ask for its own intent keeps it ("and how much is it?").
            spec = spec_for(intent)
            own_cue = spec.cue if spec is not None else None
            if strong_cue or not (own_cue and own_cue.search(text) and conf >= threshold):
                intent, conf = last, max(conf, threshold)
            elliptical = True
            if asked is None and intent == last and fields is not None:
                carried = _previous_field(state, fields, u.text)

    # A field of a product ("who supplies it?"): the intent that answers that field.
    if asked is not None:
        routed = _field_intent(asked, intent, conf, threshold, entities, state, text, named)
        if routed is not None:
            intent, conf = routed, max(conf, threshold)
    elif (intent == "out_of_scope" and named) or (
            FAMILY_OF.get(intent) == "orders" and not any(e.type == "ORDER_ID" for e in entities)
            and _most_recent_kind(state) == "PRODUCT" and not _ORDER_WORD_RE.search(text)):
        # "tell me about X", "I'm looking at X", or "tell me about it" after a product (heard as an
        # order question): a product in words a product intent uses.
        intent, conf = _cued_product_intent(text, intent, conf, threshold)
    # "which of the two is cheaper?": the products of the conversation, compared.
    if _WHICH_COMPARE_RE.search(text) and intent in ("product_recommend", "product_price", "product_details",
                                                     "out_of_scope", "product_compare") and \
            len(_conversation_products(entities, state)) >= 2 and \
            not any(e.type == "PRODUCT" and e.source == "message" for e in entities):
        intent, conf = "product_compare", max(conf, threshold)

    family = FAMILY_OF.get(intent)
    entities = _settle_ambiguity(_generic_mentions(entities, u.text), state, text, u.text)
    entities = _fill_from_context(intent, family, entities, state, text, elliptical)
    ambiguous = next((e for e in entities if e.ambiguous and e.candidates and not e.node_id), None)
    field_ask = asked if asked is not None and asked.intent == intent else carried
    return Resolution(intent=intent, confidence=conf, entities=entities, ambiguous=ambiguous,
                      clarification_dropped=pending is not None, elliptical=elliptical,
                      asked_field=field_ask if family == "products" else None)


def _cued_product_intent(text: str, intent: str, conf: float, threshold: float) -> tuple[str, float]:
    for name in ("product_details", "product_price", "product_availability", "product_warranty",
                 "product_promotions", "product_recommend", "product_compare"):
        spec = spec_for(name)
        if spec is not None and spec.cue is not None and spec.cue.search(text):
            return name, max(conf, threshold)
    return intent, conf


def _names_product(entities: list[Entity]) -> bool:
    """The message names something that may be a product: a product mention, or a brand, category
    or attribute mention that linked to nothing (the model's tag for an unfamiliar title)."""
    for e in entities:
        if e.source != "message":
            continue
        if e.type == "PRODUCT":
            return True
        if e.type in ("BRAND", "CATEGORY") and not e.node_id and not e.candidates:
            return True
        if e.type == "ATTRIBUTE" and not e.candidates:  # a value no product has: a title, most likely
            return True
    return False


_YES_NO_RE = re.compile(r"\s*(is|are|was|were|does|do|did|has|have|can|could)\b", re.IGNORECASE)


def _field_intent(asked: FieldAsk, intent: str, conf: float, threshold: float, entities: list[Entity],
                  state: DialogueState, text: str, named: bool) -> str | None:
    """The intent a field question is answered by, or None when the model's intent stands.

    A product must be at hand: named in the message, or the one the conversation is about (and
    not an order). The model's intent stands for an order named in the message, a hand-off, a
    value or a similarity alone against a confident intent, a price, stock or warranty word
    against a confident order or policy intent, and a comparison, recommendation or promotion
    asked in its own words ("cheaper alternatives", "accessories that fit")."""
    if asked.intent == intent:
        return None
    mentions = [e for e in entities if e.source == "message"]
    if any(e.type == "ORDER_ID" for e in mentions):
        return None
    family = FAMILY_OF.get(intent)
    core = asked.intent != DETAILS  # price, stock, warranty
    # "who supplies it?" about the product just discussed, even when the model heard an order question
    # (never a price, stock or warranty word, nor a message that speaks of an order)
    in_context = state.last_entities.get("PRODUCT") is not None and _most_recent_kind(state) != "ORDER_ID" \
        and (family != "orders" or (not core and asked.score >= PHRASE_W and not _ORDER_WORD_RE.search(text)))
    linked_other = any(e.type in ("BRAND", "CATEGORY") and e.node_id for e in mentions)
    confident = conf >= threshold and intent != "out_of_scope"
    # words left over that may be an untagged product name ("who wrote perfume?")
    untagged = not mentions and not core and not confident and asked.source in ("name", "phrase") and \
        any(0 < len(r.split()) <= 6 for r in asked.rests)
    if not (named or linked_other or in_context or untagged):
        return None
    spec = spec_for(intent)
    if spec is not None and spec.handoff:
        return None
    own_cue = bool(spec is not None and spec.cue is not None and spec.cue.search(text))
    # a value, a similarity or a part of a field's name alone does not overrule a confident intent;
    # a catalog value in a yes/no question ("is it from Brazil?") does overrule an availability
    # reading ("is it ...?" sounds like "is it available?") when no word of availability is there
    if asked.source in ("value", "embedding", "part") and confident and intent != DETAILS and \
            not (asked.source == "value" and intent == "product_availability" and not own_cue
                 and _YES_NO_RE.match(text)):
        return None
    if family == "products":
        # "which accessories fit it?" asks for accessories, though a shop may have a "fit" column
        if intent in ("product_compare", "product_recommend", "product_promotions") and own_cue and \
                (core or asked.score < 5):
            return None
        return asked.intent
    if family == "conversation":
        return asked.intent
    if confident and own_cue and (core or asked.score < 5):
        return None
    return asked.intent


def _among(e: Entity, refs: list[Ref]) -> bool:
    ids = {r.node_id for r in refs}
    return bool(e.node_id in ids or any(c.node_id in ids for c in e.candidates))


def _previous_field(state: DialogueState, fields: FieldResolver, text: str, *, same_intent: bool = True
                    ) -> FieldAsk | None:
    """The field the conversation's last question of the same intent asked about ("same question
    for Y" after "who wrote X?"), read again from the shopper's own words; `text`, the follow-up,
    is where the new product's name is. Without `same_intent`: the last question's field, whatever
    its intent was (the question a clarification answer completes)."""
    seen = 0
    for t in reversed(state.turns):
        if t.role != "user":
            continue
        if (same_intent and t.intent != state.last_intent) or seen >= 4:
            return None
        if not same_intent and seen >= 1:
            return None
        seen += 1
        found = fields.detect(t.text)
        if found is not None:
            rest = fields.mention_words(text)
            return FieldAsk(key=found.key, label=found.label, kind=found.kind, intent=found.intent,
                            score=found.score, source="context", contact=found.contact, rests=(rest,) if rest else ())
    return None


def _conversation_products(entities: list[Entity], state: DialogueState) -> list[str]:
    ids = [e.node_id for e in entities if e.type == "PRODUCT" and e.node_id]
    for r in state.recent_products:
        if r.node_id and r.node_id not in ids:
            ids.append(r.node_id)
    return ids


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
        if not narrowed:  # an ambiguous mention among them: the answer named some ("the one for the vista lite")
            among = next((e for e in entities if e.type == pending.entity_type and e.ambiguous and e.candidates and
                          all(c.node_id in listed_ids for c in e.candidates)), None)
            if among is not None:
                narrowed = [c for c in pending.candidates if any(c.node_id == x.node_id for x in among.candidates)]
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
        elif "PRODUCT" not in types and len(state.recent_products) >= 2 and \
                (_CHEAPER_RE.search(text) or _DEARER_RE.search(text)) and intent != "product_recommend":
            # "is the cheaper one in stock?" after two products: the cheaper of those two
            picked = pick_from(text, state.recent_products[:2], entities)
            if picked is not None:
                add(picked)
                types.add("PRODUCT")
        if intent == "product_compare":
            have = [e for e in out if e.type == "PRODUCT"]
            if len(have) < 2 and last.get("PRODUCT") is not None:
                add(last["PRODUCT"])
            if len([e for e in out if e.type == "PRODUCT"]) < 2 and len(state.last_list) >= 2 and \
                    state.last_list[0].type == "PRODUCT" and re.search(r"\b(them|these|those|both|the two)\b", text):
                for r in state.last_list[:2]:
                    add(r)
            # "which of the two is cheaper?": the products the conversation was about, latest first
            if len([e for e in out if e.type == "PRODUCT"]) < 2 and _TWO_RE.search(text):
                for r in state.recent_products:
                    if len([e for e in out if e.type == "PRODUCT"]) >= 2:
                        break
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
