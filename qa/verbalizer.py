"""Verbalizers turn a `Retrieval` plus the conversation into the reply text.

`Verbalizer` is the protocol every writer implements (the template writer in `qa.templates`, the
LLM writer here). `LLMVerbalizer` asks a `LanguageModel` to word the facts and keeps the result
only when the grounding guard finds every number, name, date and claimed action in the facts;
otherwise (and on any model error) the template reply is sent, marked ``verbalizer="template"``,
``guard_passed=False`` with the reasons. The safety filter runs on whatever is sent.

The prompt is small on purpose (the default model has 135 M parameters): a short system prompt,
the last few turns, then one user message holding the facts as JSON lines (the same records the
guard checks against), the template writer's reply as a DRAFT the model may rephrase, and the
shopper's message. Statuses where the exact wording matters (a clarifying question, a proposed
or completed action, sign-in, hand-off) go to the template writer directly; see `LLM_STATUSES`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from common.errors import KGQAError
from qa.guard import GroundingGuard, facts_json_lines
from qa.llm.base import ChatMessage, LanguageModel
from qa.safety import SafetyFilter
from qa.types import Reply, Retrieval, Turn

if TYPE_CHECKING:
    from common.settings import Settings

log = logging.getLogger(__name__)


@runtime_checkable
class Verbalizer(Protocol):
    @property
    def name(self) -> str:
        """The writer: "template" or "llm"."""
        ...

    def verbalize(self, retrieval: Retrieval, turns: list[Turn], *, customer_id: str | None) -> Reply:
        """The reply to the last turn of ``turns`` (the shopper's message) given ``retrieval``."""
        ...

    def stream(
        self, retrieval: Retrieval, turns: list[Turn], *, customer_id: str | None
    ) -> Iterator[str | Reply]:
        """Text pieces, then exactly one final `Reply` whose text is the pieces joined."""
        ...


# Statuses whose reply the LLM may word. The others are transactional or structural: the
# template's exact wording is the contract (a confirmation question, a list of candidates).
LLM_STATUSES: frozenset[str] = frozenset({"ok", "not_found", "procedure", "chitchat", "no_answer"})

SYSTEM_PROMPT = (
    "You are the customer service assistant of an online shop. Answer the customer's last message "
    "using only the FACTS. Never invent prices, dates, numbers, names, order details or policies, "
    "and never say you did something the facts do not say was done. If the facts do not answer "
    "the question, say so. Reply in plain text, one to three short sentences."
)


def chunk_text(text: str, size: int = 16) -> Iterator[str]:
    """Split ``text`` into pieces of about ``size`` characters at word boundaries; the pieces
    joined give ``text`` back exactly."""
    start = 0
    n = len(text)
    while start < n:
        end = min(n, start + size)
        if end < n:
            space = text.find(" ", end)
            end = n if space == -1 else space + 1
        yield text[start:end]
        start = end


def stream_reply(reply: Reply, chunk_chars: int = 16) -> Iterator[str | Reply]:
    yield from chunk_text(reply.text, chunk_chars)
    yield reply


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_LEADING_LABEL = re.compile(r"^\s*(?:assistant|answer|reply|response)\s*:\s*", re.I)


def clean_reply(text: str, max_sentences: int = 3) -> str:
    """Plain text, at most ``max_sentences`` sentences, no half sentence at the end (the model
    may stop at its token limit mid-sentence); a reply with no complete sentence is kept."""
    t = _LEADING_LABEL.sub("", text)
    t = re.sub(r"[*_`#]{1,3}", "", t)
    t = re.sub(r"^\s*(?:[-•]|\d+[.)])\s+", "", t, flags=re.M)
    t = re.sub(r"\s+", " ", t).strip()
    sentences = [s for s in _SENTENCE_END.split(t) if s]
    complete = [s for s in sentences if re.search(r"[.!?][\"')\]]*$", s)]
    if len(complete) < len(sentences) and complete and not re.search(r"[.!?][\"')\]]*$", sentences[-1]):
        sentences = sentences[:-1]
    return " ".join(sentences[:max_sentences]).strip()


_PROMPT_LABEL = re.compile(
    r"^\s*(?:customer(?: question)?|question|facts|draft|rewritten answer)\s*[:(]", re.I
)


def echoes_prompt(text: str, question: str) -> bool:
    """A small model sometimes repeats the prompt ("CUSTOMER: Can I still return it?") instead
    of answering: a reply that starts with one of the prompt's labels, or repeats the shopper's
    question word for word, is not an answer."""
    if _PROMPT_LABEL.search(text) or re.search(r"\b(?:FACTS|DRAFT) \(", text):
        return True
    q = re.sub(r"\s+", " ", question).strip().lower()
    return len(q) >= 12 and q in re.sub(r"\s+", " ", text).lower()


def _complete_sentences(text: str) -> int:
    return len(_SENTENCE_END.findall(text))


class SafeVerbalizer:
    """Any verbalizer with the safety filter applied to its replies (the template-only setup:
    ``LLM_BACKEND=none``)."""

    def __init__(self, inner: Verbalizer, safety: SafetyFilter, *, chunk_chars: int = 16) -> None:
        self.inner = inner
        self.safety = safety
        self.name = inner.name
        self.chunk_chars = chunk_chars

    def verbalize(self, retrieval: Retrieval, turns: list[Turn], *, customer_id: str | None) -> Reply:
        reply = self.inner.verbalize(retrieval, turns, customer_id=customer_id)
        text = self.safety.apply(reply.text, retrieval, customer_id=customer_id).text
        return reply.model_copy(update={"text": text})

    def stream(
        self, retrieval: Retrieval, turns: list[Turn], *, customer_id: str | None
    ) -> Iterator[str | Reply]:
        return stream_reply(self.verbalize(retrieval, turns, customer_id=customer_id), self.chunk_chars)


class LLMVerbalizer:
    """LLM wording with the template reply as guard-checked fallback.

    Streaming and the guard: the client receives tokens only after the whole reply has passed
    the guard and the safety filter; they are then sent in small chunks. The alternative,
    forwarding tokens as the model produces them, would show the shopper a fabricated price
    before the guard could object, and a sent token cannot be taken back; checking sentence by
    sentence would still leave a half-sent answer followed by a different (template) one. So the
    price of faithfulness is time-to-first-token equal to the generation time (a few hundred ms
    on a GPU for a 1-3 sentence reply). What streaming still buys: the model is read token by
    token, and generation is cut short as soon as a completed sentence fails the guard (the
    fallback goes out at once) or the reply has ``max_sentences`` sentences; `verbalize` uses the
    same path.
    """

    name: Literal["llm"] = "llm"

    def __init__(
        self,
        model: LanguageModel,
        fallback: Verbalizer,
        guard: GroundingGuard,
        safety: SafetyFilter,
        *,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        history_turns: int = 4,
        max_sentences: int = 3,
        chunk_chars: int = 16,
        statuses: frozenset[str] = LLM_STATUSES,
    ) -> None:
        self.model = model
        self.fallback = fallback
        self.guard = guard
        self.safety = safety
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.history_turns = history_turns
        self.max_sentences = max_sentences
        self.chunk_chars = chunk_chars
        self.statuses = statuses

    # -- prompt ---------------------------------------------------------------------------------
    def build_messages(self, retrieval: Retrieval, turns: Sequence[Turn], draft: str) -> list[ChatMessage]:
        question = turns[-1].text if turns and turns[-1].role == "user" else ""
        history = list(turns[:-1] if question else turns)[-self.history_turns :] if self.history_turns else []
        messages: list[ChatMessage] = [{"role": "system", "content": SYSTEM_PROMPT}]
        messages += [{"role": t.role, "content": t.text} for t in history]
        facts = facts_json_lines(retrieval) or "(none)"
        body = (
            f"FACTS (intent {retrieval.intent}, status {retrieval.status}):\n{facts}\n"
            f"DRAFT (correct; you may rephrase it): {draft}\n\n"
            f"CUSTOMER: {question or '(no message)'}"
        )
        messages.append({"role": "user", "content": body})
        return messages

    # -- replies --------------------------------------------------------------------------------
    def verbalize(self, retrieval: Retrieval, turns: list[Turn], *, customer_id: str | None) -> Reply:
        return self._produce(retrieval, turns, customer_id)

    def stream(
        self, retrieval: Retrieval, turns: list[Turn], *, customer_id: str | None
    ) -> Iterator[str | Reply]:
        return stream_reply(self._produce(retrieval, turns, customer_id), self.chunk_chars)

    def _fallback(
        self, draft: Reply, retrieval: Retrieval, customer_id: str | None, reasons: list[str],
        llm_text: str = "",
    ) -> Reply:
        text = self.safety.apply(draft.text, retrieval, customer_id=customer_id).text
        if reasons:
            log.info("llm reply replaced by template", extra={"intent": retrieval.intent, "reasons": reasons})
            return Reply(text=text, verbalizer="template", guard_passed=False, guard_reasons=reasons,
                         llm_draft=llm_text or None)
        return draft.model_copy(update={"text": text})

    def _produce(self, retrieval: Retrieval, turns: Sequence[Turn], customer_id: str | None) -> Reply:
        draft = self.fallback.verbalize(retrieval, list(turns), customer_id=customer_id)
        if retrieval.status not in self.statuses:
            return self._fallback(draft, retrieval, customer_id, [])
        messages = self.build_messages(retrieval, turns, draft.text)
        raw = ""
        early: list[str] = []
        try:
            tokens = self.model.stream(
                messages, max_new_tokens=self.max_new_tokens, temperature=self.temperature
            )
            checked = 0
            try:
                for piece in tokens:
                    raw += piece
                    done = _complete_sentences(raw)
                    if done > checked:
                        checked = done
                        partial = clean_reply(raw, self.max_sentences)
                        ok, reasons = self.guard.check(partial, retrieval, draft=draft.text)
                        if not ok:
                            early = reasons
                            break
                        if done >= self.max_sentences:
                            break
            finally:
                close = getattr(tokens, "close", None)
                if close is not None:
                    close()  # cancels the rest of the generation
        except KGQAError as exc:
            return self._fallback(draft, retrieval, customer_id, [f"model error ({exc.code}): {exc.message}"])
        except Exception as exc:  # noqa: BLE001 - a model failure must not fail the chat turn
            log.exception("llm verbalizer: model failed")
            return self._fallback(draft, retrieval, customer_id, [f"model error: {type(exc).__name__}"])
        text = clean_reply(raw, self.max_sentences)
        if early:
            return self._fallback(draft, retrieval, customer_id, early, text)
        if not text:
            return self._fallback(draft, retrieval, customer_id, ["the model returned no text"])
        question = turns[-1].text if turns and turns[-1].role == "user" else ""
        if echoes_prompt(text, question):
            return self._fallback(
                draft, retrieval, customer_id, ["the model echoed the prompt instead of answering"], text
            )
        ok, reasons = self.guard.check(text, retrieval, draft=draft.text)
        if not ok:
            return self._fallback(draft, retrieval, customer_id, reasons, text)
        safe = self.safety.apply(text, retrieval, customer_id=customer_id)
        if safe.blocked:
            return self._fallback(
                draft, retrieval, customer_id, [f"blocked word(s): {', '.join(safe.blocked)}"], text
            )
        return Reply(text=safe.text, verbalizer="llm", guard_passed=True, guard_reasons=[], llm_draft=text)


def build_verbalizer(
    settings: Settings, *, catalogue_names: Iterable[str] = (), template: Verbalizer | None = None
) -> Verbalizer:
    """The configured writer: the template writer behind the safety filter for
    ``LLM_BACKEND=none``, else the LLM writer (model loaded on first use) with the template
    writer as its guarded fallback. ``catalogue_names`` (product and brand names from the graph)
    let the guard recognise a real product the facts do not mention; they can be replaced later
    with ``verbalizer.guard.set_catalogue(names)`` or followed with ``verbalizer.guard.follow(...)``
    (the composition root, common/bootstrap.py, has the guard follow the entity linker's index)."""
    from qa.llm import build_language_model

    if template is None:
        from qa.templates import TemplateVerbalizer

        template = TemplateVerbalizer()
    safety = SafetyFilter.from_settings(settings)
    model = build_language_model(settings, lazy=True)
    if model is None:
        return SafeVerbalizer(template, safety)
    guard = GroundingGuard(catalogue_names, default_currencies=[settings.store_currency])
    return LLMVerbalizer(
        model,
        template,
        guard,
        safety,
        temperature=settings.llm_temperature,
        history_turns=settings.llm_history_turns,
    )
