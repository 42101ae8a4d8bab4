"""Dynamic batching of concurrent generation requests in front of a `LocalLM`.

One worker thread owns the model. Requests from any number of threads (gunicorn threads, SSE
streams) go into a queue; the worker takes the first one, then whatever else is already waiting
and, for up to ``max_wait_ms``, whatever arrives next, up to ``max_batch_size``; it encodes each
request (a bad one fails alone), left-pads them and runs them as one `generate` (see
`LocalLM.run_rows`: per-row stop, per-row token limit, cancellation). Every produced token id
goes straight onto that request's own queue; the requesting thread turns ids into text with an
incremental decoder, so the worker thread spends its time on the model, not on detokenising 64
streams.

Under load the queue fills while a batch runs, so the next batch starts full and without waiting:
throughput grows with the number of concurrent sessions until the device is saturated, at the
price of time-to-first-token for requests that arrive while a batch is running (they wait for
it to finish; this is static batching per round, not iteration-level continuous batching: see
the README for when that is worth the complexity).

Failure isolation: an invalid request (bad messages, prompt too long) is answered with its error
and never reaches the model; an exception inside a batch fails only that batch's requests
(on CUDA out-of-memory the batch is split in halves and retried for the requests that have not
received a token yet) and the worker carries on. `close()` fails queued requests and cancels
running ones with `LLMUnavailable`, and joins the thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from qa.llm.base import LLMError, LLMUnavailable, Messages, check_messages
from qa.llm.local import IncrementalDecoder, LocalLM, Row, as_llm_error

log = logging.getLogger(__name__)

_END = object()
_STOP = object()


@dataclass(eq=False)
class _Request:
    messages: list[dict[str, str]]
    max_new_tokens: int
    temperature: float
    submitted: float
    out: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    cancel: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    shutdown: bool = False

    def emit(self, token_id: int) -> None:
        self.sent += 1
        self.out.put(token_id)


@dataclass
class BatcherStats:
    requests: int = 0
    batches: int = 0
    rows: int = 0
    max_batch: int = 0
    failed_batches: int = 0
    tokens: int = 0  # generated tokens handed to requests

    @property
    def mean_batch(self) -> float:
        return self.rows / self.batches if self.batches else 0.0


class BatchingLM:
    """A `LanguageModel` that batches concurrent calls onto one `LocalLM`. The worker thread
    starts on the first request (building this object does nothing)."""

    def __init__(
        self,
        lm: LocalLM,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        request_timeout_s: float = 120.0,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.lm = lm
        self.name = f"batched:{lm.name}"
        self.max_batch_size = max_batch_size
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self.request_timeout_s = request_timeout_s
        self._pending: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._active: set[_Request] = set()
        self._stats = BatcherStats()

    # -- client side ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> BatcherStats:
        with self._lock:
            return BatcherStats(**self._stats.__dict__)

    def _submit(self, messages: Messages, max_new_tokens: int | None, temperature: float) -> _Request:
        msgs = check_messages(messages)
        req = _Request(msgs, self.lm.token_limit(max_new_tokens), float(temperature), time.monotonic())
        with self._lock:
            if self._closed:
                raise LLMUnavailable("the language model is shutting down")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="llm-batcher", daemon=True)
                self._thread.start()
            self._stats.requests += 1
            self._pending.put(req)
        return req

    def _consume(self, req: _Request) -> Iterator[str]:
        decoder = IncrementalDecoder(self.lm.tokenizer)
        deadline = req.submitted + self.request_timeout_s
        try:
            while True:
                try:
                    item = req.out.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise LLMUnavailable(
                        f"no reply from the language model within {self.request_timeout_s:g} s"
                    ) from None
                if item is _END:
                    tail = decoder.flush()
                    if tail:
                        yield tail
                    return
                if isinstance(item, BaseException):
                    raise as_llm_error(item)
                piece = decoder.push(item)
                if piece:
                    yield piece
        finally:
            req.cancel.set()

    def stream(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> Iterator[str]:
        return self._consume(self._submit(messages, max_new_tokens, temperature))

    def generate(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> str:
        return "".join(self.stream(messages, max_new_tokens=max_new_tokens, temperature=temperature))

    def generate_batch(
        self, batch: Sequence[Messages], *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> list[str]:
        reqs = [self._submit(m, max_new_tokens, temperature) for m in batch]
        try:
            return ["".join(self._consume(r)) for r in reqs]
        finally:
            for r in reqs:
                r.cancel.set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting requests, cancel running ones, fail queued ones, join the worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for req in self._active:
                req.shutdown = True
                req.cancel.set()
            thread = self._thread
            self._pending.put(_STOP)
        if thread is not None:
            thread.join(timeout)
        # Normally empty by now; if the worker is stuck in a long batch, answer the queue for it
        # and leave the stop marker for it to find.
        self._fail_queued(keep_stop=thread is not None and thread.is_alive())

    def _fail_queued(self, keep_stop: bool = False) -> None:
        saw_stop = False
        while True:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Request):
                item.out.put(LLMUnavailable("the language model is shutting down"))
            else:
                saw_stop = True
        if saw_stop and keep_stop:
            self._pending.put(_STOP)

    # -- worker side ----------------------------------------------------------------------------
    def _loop(self) -> None:
        carry: deque[_Request] = deque()  # taken from the queue but with another sampling setting
        while True:
            try:
                batch = self._collect(carry)
                if batch is None:
                    for req in carry:
                        req.out.put(LLMUnavailable("the language model is shutting down"))
                    self._fail_queued()
                    return
                if batch:
                    self._run(batch)
            except Exception:  # noqa: BLE001 - the worker must outlive any one batch
                log.exception("llm batcher: unexpected error; continuing")

    def _collect(self, carry: deque[_Request]) -> list[_Request] | None:
        first = carry.popleft() if carry else self._pending.get()
        if first is _STOP:
            return None
        batch = [first]
        key = first.temperature
        for req in list(carry):
            if len(batch) < self.max_batch_size and req.temperature == key:
                carry.remove(req)
                batch.append(req)
        deadline = time.monotonic() + self.max_wait_s
        stop = False
        while len(batch) < self.max_batch_size:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._pending.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is _STOP:
                stop = True
                break
            if item.temperature != key:
                carry.append(item)
            else:
                batch.append(item)
        if stop:
            self._pending.put(_STOP)  # seen again after this batch
        live = []
        for req in batch:
            if req.cancel.is_set():  # the client went away while queued
                req.out.put(LLMUnavailable("cancelled"))
            else:
                live.append(req)
        return live

    def _run(self, batch: list[_Request]) -> None:
        ready: list[tuple[_Request, Row]] = []
        for req in batch:
            try:
                ids = self.lm.encode(req.messages)
            except LLMError as exc:
                req.out.put(exc)
                continue
            ready.append((req, Row(ids, req.max_new_tokens, sink=req.emit, cancel=req.cancel)))
        if not ready:
            return
        with self._lock:
            self._active.update(r for r, _ in ready)
            if self._closed:
                for r, _ in ready:
                    r.shutdown = True
                    r.cancel.set()
        try:
            self._generate(ready)
        finally:
            with self._lock:
                self._active.difference_update(r for r, _ in ready)

    def _generate(self, ready: list[tuple[_Request, Row]]) -> None:
        temperature = ready[0][0].temperature
        try:
            self.lm.run_rows([row for _, row in ready], temperature=temperature)
        except Exception as exc:  # noqa: BLE001 - reported to this batch's requests only
            with self._lock:
                self._stats.failed_batches += 1
            if isinstance(exc, torch.OutOfMemoryError) and len(ready) > 1:
                fresh = [(r, row) for r, row in ready if r.sent == 0]
                for r, _ in ready:
                    if r.sent:
                        r.out.put(as_llm_error(exc))
                log.warning("llm batcher: out of memory at batch %d; splitting", len(ready))
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                half = len(fresh) // 2
                for part in (fresh[:half], fresh[half:]):
                    if part:
                        self._generate(part)
                return
            log.warning("llm batcher: batch of %d failed: %s", len(ready), exc)
            for r, _ in ready:
                r.out.put(as_llm_error(exc))
            return
        with self._lock:
            self._stats.batches += 1
            self._stats.rows += len(ready)
            self._stats.max_batch = max(self._stats.max_batch, len(ready))
            self._stats.tokens += sum(r.sent for r, _ in ready)
        for r, _ in ready:
            if r.shutdown:
                r.out.put(LLMUnavailable("the language model is shutting down"))
            else:
                r.out.put(_END)
