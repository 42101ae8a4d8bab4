"""The index of intent handlers: which handler answers each intent, and that intent's properties.

Every intent of nlu/labels.py has exactly one handler: two handlers for one intent cannot be
indexed (an error when this module is imported), and `problems()` names an intent without a handler
or a handler for a name that is not an intent (tests/test_dialogue_registry.py checks it is empty). Retrieval dispatch (qa/retrieval.py), the template writer and
its suggestions (qa/templates.py), context cues (qa/context.py), hand-off (qa/handoff.py) and the
grounding guard's action words (qa/guard.py) read intent properties here rather than keeping
tables of their own. A new family of questions is one module under qa/handlers/ and one line in
`HANDLERS`; see docs/adding-a-question.md.
"""

from __future__ import annotations

from nlu.labels import INTENTS
from qa.handlers.account import AccountAndService
from qa.handlers.base import Handler, IntentSpec
from qa.handlers.conversation import Conversation
from qa.handlers.order_actions import OrderActions
from qa.handlers.orders import Orders
from qa.handlers.policies import Policies
from qa.handlers.procedures import Procedures
from qa.handlers.products import Products

HANDLERS: tuple[Handler, ...] = (
    Products(), Orders(), OrderActions(), Policies(), Procedures(), AccountAndService(), Conversation(),
)


def _index(handlers: tuple[Handler, ...]) -> dict[str, tuple[Handler, IntentSpec]]:
    index: dict[str, tuple[Handler, IntentSpec]] = {}
    for handler in handlers:
        for spec in handler.intents:
            if spec.name in index:
                raise ValueError(f"intent {spec.name!r} has two handlers: {index[spec.name][0].family} and "
                                 f"{handler.family}")
            index[spec.name] = (handler, spec)
    return index


_BY_INTENT = _index(HANDLERS)
# When the intent is unknown (never from the engine, which maps unknown names to out_of_scope).
_FALLBACK = _BY_INTENT["out_of_scope"]


def problems() -> list[str]:
    """What is wrong with the index: an intent of nlu/labels.py without a handler, or a handler
    answering an intent that is not one."""
    out = [f"intent {i!r} has no handler" for i in INTENTS if i not in _BY_INTENT]
    out += [f"{h.family} answers {name!r}, which is not an intent of nlu/labels.py"
            for name, (h, _) in _BY_INTENT.items() if name not in INTENTS]
    return out


def handler_for(intent: str) -> Handler:
    return _BY_INTENT.get(intent, _FALLBACK)[0]


def spec_for(intent: str) -> IntentSpec | None:
    """The intent's properties (None for a name that is not an intent)."""
    found = _BY_INTENT.get(intent)
    return found[1] if found is not None else None


def specs() -> list[IntentSpec]:
    return [spec for _, spec in _BY_INTENT.values()]
