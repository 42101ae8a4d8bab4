"""The same GGUF file on the CPU through llama.cpp (llama-cpp-python), an optional dependency.

llama.cpp runs the quantised weights directly (no de-quantisation to fp32 as transformers
does), which is the fast CPU path. It is imported only when this backend is chosen; without it
the error names the package to install. One `Llama` object is not thread-safe, so calls are
serialised; for concurrent load on one host, run llama.cpp's own server (which batches) and use
``LLM_BACKEND=remote``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from common.errors import ConfigError, MissingDependency
from qa.llm.base import LLMError, Messages, check_messages, resolve_model_path

INSTALL_HINT = "pip install llama-cpp-python==0.3.36 (or KGQA_LLAMACPP=1 ./kgqa ..., which does it once)"


def import_llama() -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise MissingDependency(
            f"LLM_BACKEND=llamacpp needs llama-cpp-python: {INSTALL_HINT}",
            details={"package": "llama-cpp-python"},
        ) from exc
    return Llama


class LlamaCppLM:
    def __init__(self, llama: Any, *, max_new_tokens: int = 96, name: str = "llamacpp") -> None:
        self._llama = llama
        self.max_new_tokens = max_new_tokens
        self.name = name
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int = 0,
        max_new_tokens: int = 96,
    ) -> LlamaCppLM:
        Llama = import_llama()
        directory, gguf = resolve_model_path(path)
        if gguf is None:
            raise ConfigError(
                f"LLM_BACKEND=llamacpp needs a .gguf file; {directory} is a Hugging Face directory"
            )
        llama = Llama(
            model_path=str(directory / gguf),
            n_ctx=n_ctx,
            n_threads=n_threads or None,
            seed=0,
            verbose=False,
        )
        return cls(llama, max_new_tokens=max_new_tokens, name=f"llamacpp:{gguf}")

    def stream(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> Iterator[str]:
        msgs = check_messages(messages)
        n = max_new_tokens or self.max_new_tokens
        return self._stream(msgs, n, temperature)

    def _stream(self, msgs: list[dict[str, str]], n: int, temperature: float) -> Iterator[str]:
        if self._llama is None:
            raise LLMError("the llama.cpp model is closed")
        with self._lock:
            try:
                # Start from an empty KV cache: reusing the previous prompt's prefix evaluates the
                # prompt in different chunks, which changes greedy output on this small quantised
                # model (the same request would not give the same reply twice).
                self._llama.reset()
                greedy = {"top_k": 1} if temperature <= 0 else {}
                chunks = self._llama.create_chat_completion(
                    messages=msgs, max_tokens=n, temperature=max(0.0, temperature), stream=True, **greedy
                )
                for chunk in chunks:
                    piece = (chunk["choices"][0].get("delta") or {}).get("content")
                    if piece:
                        yield piece
            except ValueError as exc:  # llama.cpp's "Requested tokens exceed context window"
                raise LLMError(f"llama.cpp rejected the request: {exc}") from exc

    def generate(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> str:
        return "".join(self.stream(messages, max_new_tokens=max_new_tokens, temperature=temperature))

    def generate_batch(
        self, batch: Sequence[Messages], *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> list[str]:
        return [self.generate(m, max_new_tokens=max_new_tokens, temperature=temperature) for m in batch]

    def close(self) -> None:
        with self._lock:
            llama, self._llama = self._llama, None
        if llama is not None and hasattr(llama, "close"):
            llama.close()
