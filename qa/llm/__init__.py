"""Language-model backends behind one interface (`qa.llm.base.LanguageModel`).

`build_language_model(settings)` is the one place a backend is chosen (``LLM_BACKEND``):

- ``local``: transformers + torch in this process (`local.LocalLM`), behind the dynamic batcher
  (`batching.BatchingLM`) unless ``LLM_BATCHING=false``;
- ``llamacpp``: llama-cpp-python on the CPU (`llamacpp.LlamaCppLM`), optional dependency;
- ``remote``: any OpenAI-compatible server (`remote.RemoteLM`);
- ``none``: no model (the app uses the template writer alone).

Nothing is imported or loaded until the factory is called; with ``lazy=True`` not even then (the
model loads on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.llm.base import (
    ChatMessage,
    LanguageModel,
    LazyLanguageModel,
    LLMError,
    LLMUnavailable,
    Messages,
)

if TYPE_CHECKING:
    from common.settings import Settings

__all__ = [
    "ChatMessage",
    "LanguageModel",
    "LazyLanguageModel",
    "LLMError",
    "LLMUnavailable",
    "Messages",
    "build_language_model",
]


def resolve_backend(settings: Settings) -> str:
    """`auto` picks the in-process model only where it is fast enough to serve chat (a GPU)."""
    if settings.llm_backend != "auto":
        return settings.llm_backend
    try:
        import torch

        return "local" if torch.cuda.is_available() else "none"
    except ImportError:  # pragma: no cover - torch is a requirement
        return "none"


def _load(settings: Settings) -> LanguageModel:
    backend = resolve_backend(settings)
    if backend == "local":
        from qa.llm.local import LocalLM

        lm = LocalLM.load(
            settings.llm_model_path or None,
            device=settings.llm_device,
            cache_dir=settings.llm_cache_dir or None,
            threads=settings.llm_threads,
            max_new_tokens=settings.llm_max_new_tokens,
            max_prompt_tokens=settings.llm_max_prompt_tokens,
            compile=settings.llm_compile,
            max_batch_size=settings.llm_batch_max_size,
        )
        if not settings.llm_batching:
            return lm
        from qa.llm.batching import BatchingLM

        return BatchingLM(
            lm,
            max_batch_size=settings.llm_batch_max_size,
            max_wait_ms=settings.llm_batch_wait_ms,
            request_timeout_s=max(settings.llm_timeout_s, 1.0),
        )
    if backend == "llamacpp":
        from qa.llm.llamacpp import LlamaCppLM

        return LlamaCppLM.load(
            settings.llm_model_path or None,
            n_ctx=settings.llm_context_tokens,
            n_threads=settings.llm_threads,
            max_new_tokens=settings.llm_max_new_tokens,
        )
    if backend == "remote":
        from qa.llm.remote import RemoteLM

        return RemoteLM.from_settings(settings)
    raise ValueError(f"no language model for LLM_BACKEND={backend!r}")


def build_language_model(settings: Settings, *, lazy: bool = False) -> LanguageModel | None:
    """The configured model, or None for ``LLM_BACKEND=none``. ``lazy=True`` returns a wrapper
    that loads on first use (so building an app does no I/O)."""
    backend = resolve_backend(settings)
    if backend == "none":
        return None
    if lazy:
        return LazyLanguageModel(lambda: _load(settings), name=backend)
    return _load(settings)
