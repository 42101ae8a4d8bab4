"""In-process generation with transformers + torch (the GPU path, and the CPU reference).

`LocalLM.load` is the only place that does I/O: it reads a GGUF file (the packaged SmolLM2 by
default, de-quantised by transformers through `gguf`) or any local Hugging Face model directory,
puts it on CUDA when there is one (bf16 where supported, else fp16) and keeps fp32 on the CPU.
The constructor only takes what was loaded, so tests and the bench can build one from parts.

`LocalLM.run_rows` is the engine under everything here, the dynamic batcher included: one left-
padded `model.generate` over several prompts, greedy by default, with each row's tokens handed
to its own sink as they are produced and each row stopped on its own (end-of-sequence, its own
token limit, or cancellation by its client). Because the single-request calls go through the
same function with one row, "batched equals unbatched" is a property of the padding and the
attention mask alone, which the tests check.

On CUDA with ``compile=True`` the decode step runs with a static KV cache under torch.compile
("reduce-overhead", i.e. CUDA graphs). Shapes are bucketed (batch size to a power of two, prompt
length to a multiple of 64, the token limit fixed at the configured maximum) so the number of
compiled graphs stays small and bounded; `warmup` compiles them before traffic arrives. Padding
rows are cancelled from the first step. Compilation is opt-in (setting ``LLM_COMPILE``): it is
the fastest decode path on a GPU but it is also the one this project could not exercise on real
hardware yet; plain batched generate is the default and already scales with batch size.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from common.errors import ConfigError
from qa.llm.base import LLMError, LLMUnavailable, Messages, check_messages, resolve_model_path

log = logging.getLogger(__name__)

TokenSink = Callable[[int], None]


def _cache_key(gguf: Path) -> str:
    import transformers

    st = gguf.stat()
    ident = f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}|{transformers.__version__}"
    return f"{gguf.stem}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def _save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Write the converted model next to its final place and rename it in (two processes
    converting at once: the second rename loses harmlessly). A failure only costs speed."""
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        from transformers import AutoModelForCausalLM

        target.parent.mkdir(parents=True, exist_ok=True)
        # A model loaded from GGUF is marked as quantized and refuses to save itself; its weights
        # are plain fp32 tensors by now, so a fresh model of the same config holds them as well.
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        plain.generation_config = model.generation_config
        plain.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if not target.exists():
            os.replace(tmp, target)
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("llm: could not cache the converted model at %s: %s", target, exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("LLM_DEVICE=cuda but torch sees no CUDA device")
    if device not in {"cpu", "cuda"} and not device.startswith("cuda:"):
        raise ConfigError(f"LLM_DEVICE must be auto, cpu or cuda, not {device!r}")
    return torch.device(device)


def _default_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _bucket_pow2(n: int, cap: int) -> int:
    b = 1
    while b < n:
        b *= 2
    return max(n, min(b, cap))


class IncrementalDecoder:
    """Token ids in, text pieces out, without re-decoding the whole reply at every step: only a
    short window of recent tokens is decoded (so multi-token characters and tokenizers that
    drop a leading space come out right). ``"".join(pieces) + flush()`` equals decoding all the
    ids at once."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        new_text = self._decode(self.ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return new_text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character at the very end)."""
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        new_text = self._decode(self.ids[self._prefix :])
        self._prefix = self._read = len(self.ids)
        return new_text[len(prefix_text) :]


@dataclass
class Row:
    """One prompt in a batched run."""

    prompt_ids: list[int]
    max_new_tokens: int
    sink: TokenSink | None = None
    cancel: threading.Event | None = None


class _RowStreamer:
    """Receives each decoding step's tokens for the whole batch from `generate` and routes them
    to the rows' sinks; keeps each row's ids (the result). The first `put` is the prompt."""

    def __init__(self, rows: Sequence[Row], eos_ids: frozenset[int]) -> None:
        self.rows = rows
        self.eos_ids = eos_ids
        self.ids: list[list[int]] = [[] for _ in rows]
        self.done = [False] * len(rows)
        self._seen_prompt = False

    def put(self, value: torch.Tensor) -> None:
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        for i, tok in enumerate(value.reshape(-1).tolist()):
            if self.done[i]:
                continue
            row = self.rows[i]
            if tok in self.eos_ids or (row.cancel is not None and row.cancel.is_set()):
                self.done[i] = True
                continue
            self.ids[i].append(tok)
            if row.sink is not None:
                row.sink(tok)
            if len(self.ids[i]) >= row.max_new_tokens:
                self.done[i] = True

    def end(self) -> None:
        pass


class _RowStop:
    """Per-row stopping criterion for `generate`: a row stops at its own token limit or when its
    client cancels. The limits live on the device; the cancel mask is re-uploaded only after a
    cancellation, so the common step costs no host-device copy."""

    def __init__(self, rows: Sequence[Row], prompt_len: int, device: torch.device) -> None:
        self.rows = rows
        self.prompt_len = prompt_len
        self.limits = torch.tensor([r.max_new_tokens for r in rows], device=device)
        self._cancelled = [False] * len(rows)
        self._mask = torch.zeros(len(rows), dtype=torch.bool, device=device)

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        changed = False
        for i, row in enumerate(self.rows):
            if not self._cancelled[i] and row.cancel is not None and row.cancel.is_set():
                self._cancelled[i] = changed = True
        if changed:
            self._mask = torch.tensor(self._cancelled, dtype=torch.bool, device=input_ids.device)
        return (input_ids.shape[1] - self.prompt_len >= self.limits) | self._mask


class LocalLM:
    """A causal LM in this process. Thread-safe: calls are serialised by a lock (put the
    `BatchingLM` in front of it to serve concurrent requests efficiently)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: torch.device,
        max_new_tokens: int = 96,
        max_prompt_tokens: int = 1536,
        compile: bool = False,
        max_batch_size: int = 64,
        name: str = "local",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.compile = compile and device.type == "cuda"
        self.max_batch_size = max_batch_size
        self.name = name
        self._lock = threading.Lock()
        eos = getattr(model.generation_config, "eos_token_id", None)
        eos_list = eos if isinstance(eos, list) else [eos]
        eos_ids = {int(e) for e in eos_list if e is not None}
        if tokenizer.eos_token_id is not None:
            eos_ids.add(int(tokenizer.eos_token_id))
        if not eos_ids:
            raise ConfigError(f"model {name} defines no end-of-sequence token")
        self.eos_ids = frozenset(eos_ids)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else min(self.eos_ids)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        device: str = "auto",
        dtype: torch.dtype | None = None,
        max_new_tokens: int = 96,
        max_prompt_tokens: int = 1536,
        compile: bool = False,
        max_batch_size: int = 64,
        random_weights: bool = False,
        cache_dir: str | Path | None = None,
        threads: int = 0,
    ) -> LocalLM:
        """Load a GGUF file or a Hugging Face directory. ``random_weights`` builds the same
        architecture from its config with random weights (benchmarks on machines the weights
        cannot travel to). With ``cache_dir``, a GGUF file is converted once and kept there as a
        Hugging Face directory (fp32 safetensors + tokenizer): reading the GGUF metadata and
        de-quantising takes about a minute on two cores, the converted copy a few seconds.
        ``threads`` > 0 sets torch's CPU thread count (process-wide): on a CPU shared with other
        busy processes, fewer threads than cores is much faster (threads that wait for each
        other at every matrix product stall whenever one of them is descheduled)."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        directory, gguf_file = resolve_model_path(path)
        dev = resolve_device(device)
        dt = dtype or _default_dtype(dev)
        if threads > 0 and dev.type == "cpu":
            torch.set_num_threads(threads)
        name = gguf_file or directory.name
        save_to: Path | None = None
        if gguf_file and cache_dir and not random_weights:
            cached = Path(cache_dir) / _cache_key(directory / gguf_file)
            if (cached / "config.json").is_file():
                directory, gguf_file = cached, None
            else:
                save_to = cached
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory), **extra)
            if random_weights:
                config = AutoConfig.from_pretrained(str(directory), **extra)
                torch.manual_seed(0)
                model = AutoModelForCausalLM.from_config(config, dtype=dt)
            else:
                # GGUF weights are de-quantised to fp32; cast after a possible save so the cache
                # keeps the exact values.
                load_dtype = torch.float32 if gguf_file else dt
                model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=load_dtype, **extra)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the language model from {directory}: {exc}") from exc
        if tokenizer.chat_template is None:
            raise ConfigError(f"the tokenizer at {directory} has no chat template")
        if save_to is not None:
            _save_converted(model, tokenizer, save_to)
        model.to(device=dev, dtype=dt)
        model.eval()
        log.info("llm loaded", extra={"model": name, "device": str(dev), "dtype": str(dt)})
        return cls(
            model,
            tokenizer,
            device=dev,
            max_new_tokens=max_new_tokens,
            max_prompt_tokens=max_prompt_tokens,
            compile=compile,
            max_batch_size=max_batch_size,
            name=name,
        )

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, messages: Messages) -> list[int]:
        """Chat template + generation prompt -> token ids; rejects prompts over the limit."""
        msgs = check_messages(messages)
        try:
            ids = self.tokenizer.apply_chat_template(
                msgs, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        except Exception as exc:  # noqa: BLE001 - template errors are the caller's request
            raise LLMError(f"the chat template rejected the messages: {exc}") from exc
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        ids = [int(t) for t in ids]
        if len(ids) > self.max_prompt_tokens:
            raise LLMError(
                f"prompt has {len(ids)} tokens, more than LLM_MAX_PROMPT_TOKENS={self.max_prompt_tokens}",
                details={"prompt_tokens": len(ids)},
            )
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def token_limit(self, max_new_tokens: int | None) -> int:
        """The effective limit for a request (the default when None; capped when compiling)."""
        n = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        if n < 1:
            raise LLMError("max_new_tokens must be at least 1")
        return min(n, self.max_new_tokens) if self.compile else n

    # -- the engine -----------------------------------------------------------------------------
    def run_rows(
        self, rows: Sequence[Row], *, temperature: float = 0.0, top_p: float = 1.0
    ) -> list[list[int]]:
        """Generate for several encoded prompts at once; returns each row's new token ids (end
        token excluded). Sinks are called from this thread as tokens are produced."""
        if not rows:
            return []
        if self.model is None:
            raise LLMUnavailable(f"model {self.name} is closed")
        from transformers import GenerationConfig, StoppingCriteriaList

        rows = list(rows)
        n_real = len(rows)
        prompt_len = max(len(r.prompt_ids) for r in rows)
        limit = max(r.max_new_tokens for r in rows)
        cache_kwargs: dict[str, Any] = {}
        if self.compile:
            # Fixed shapes: pad the batch with cancelled dummy rows and the prompt to 64s.
            from transformers import CompileConfig

            size = _bucket_pow2(n_real, self.max_batch_size)
            pad_row = Row(prompt_ids=[self.pad_id], max_new_tokens=1, cancel=_SET_EVENT)
            rows += [pad_row] * (size - n_real)
            prompt_len = -(-prompt_len // 64) * 64
            limit = self.max_new_tokens
            cache_kwargs = {
                "cache_implementation": "static",
                "compile_config": CompileConfig(fullgraph=False, dynamic=False, mode="reduce-overhead"),
            }
        input_ids = torch.full((len(rows), prompt_len), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), prompt_len), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r.prompt_ids)
            input_ids[i, prompt_len - n :] = torch.tensor(r.prompt_ids, dtype=torch.long)
            mask[i, prompt_len - n :] = 1
        do_sample = temperature > 0
        config = GenerationConfig(
            max_new_tokens=limit,
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_p=top_p if do_sample else None,
            top_k=None,
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids),
            **cache_kwargs,
        )
        streamer = _RowStreamer(rows, self.eos_ids)
        stop = _RowStop(rows, prompt_len, self.device)
        with self._lock, torch.inference_mode():
            self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                generation_config=config,
                stopping_criteria=StoppingCriteriaList([stop]),
                streamer=streamer,
            )
        return streamer.ids[:n_real]

    def warmup(self, batch_sizes: Sequence[int] = (1,), prompt_tokens: int = 64) -> None:
        """Run one short generation per batch size (compiles the CUDA graphs when compiling)."""
        prompt = [self.pad_id] * max(1, prompt_tokens)
        for b in batch_sizes:
            rows = [Row(prompt_ids=prompt, max_new_tokens=2) for _ in range(b)]
            self.run_rows(rows)

    # -- LanguageModel --------------------------------------------------------------------------
    def generate(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> str:
        ids = self.run_rows(
            [Row(self.encode(messages), self.token_limit(max_new_tokens))], temperature=temperature
        )[0]
        return self.decode(ids)

    def stream(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> Iterator[str]:
        row = Row(self.encode(messages), self.token_limit(max_new_tokens), cancel=threading.Event())
        return _stream_in_thread(self, row, temperature)

    def generate_batch(
        self, batch: Sequence[Messages], *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> list[str]:
        limit = self.token_limit(max_new_tokens)
        rows = [Row(self.encode(m), limit) for m in batch]
        out: list[str] = []
        for start in range(0, len(rows), self.max_batch_size):
            chunk = rows[start : start + self.max_batch_size]
            out.extend(self.decode(ids) for ids in self.run_rows(chunk, temperature=temperature))
        return out

    def close(self) -> None:
        """Drop the weights (memory goes back when the last reference goes)."""
        self.model = None


def as_llm_error(exc: BaseException) -> LLMError:
    """Map a failure inside generation to the error tree: out of memory is transient (a smaller
    batch or a later try can succeed), anything else is not."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, torch.OutOfMemoryError):
        return LLMUnavailable("the model ran out of memory")
    return LLMError(f"generation failed: {type(exc).__name__}: {exc}")


class _AlwaysSet(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.set()


_SET_EVENT = _AlwaysSet()

_END = object()


def _stream_in_thread(lm: LocalLM, row: Row, temperature: float) -> Iterator[str]:
    """Run one row in a helper thread and yield its text as it comes; closing the generator
    cancels the row."""
    import queue

    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    row.sink = q.put

    def work() -> None:
        try:
            lm.run_rows([row], temperature=temperature)
            q.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    def gen() -> Iterator[str]:
        thread = threading.Thread(target=work, name="llm-stream", daemon=True)
        thread.start()
        decoder = IncrementalDecoder(lm.tokenizer)
        try:
            while True:
                item = q.get()
                if item is _END:
                    tail = decoder.flush()
                    if tail:
                        yield tail
                    return
                if isinstance(item, BaseException):
                    raise as_llm_error(item) from item
                piece = decoder.push(item)
                if piece:
                    yield piece
        finally:
            assert row.cancel is not None
            row.cancel.set()

    return gen()
