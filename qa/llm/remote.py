"""Any OpenAI-compatible chat server (vLLM, TGI, llama.cpp server, ...) by URL.

``POST {base}/v1/chat/completions`` with ``stream: true``; the server-sent events are read line
by line and each ``choices[0].delta.content`` is yielded as it arrives. Standard library only
(`http.client`), so this backend adds no dependency.

Failures: a refused or dropped connection, a timeout, HTTP 408/429/5xx are retried (exponential
back-off, ``Retry-After`` honoured up to a cap) as long as no token has been handed to the caller
yet; after that, or once the retries are spent, `LLMUnavailable` (retryable). Any other HTTP
status, or a malformed event, is an `LLMError` carrying the server's message (never the API
key). ``timeout_s`` bounds connecting and each wait for the next chunk, so a stalled server is
noticed without capping a long reply.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from common.errors import ConfigError
from qa.llm.base import LLMError, LLMUnavailable, Messages, check_messages

log = logging.getLogger(__name__)

_RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _endpoint(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"LLM_REMOTE_URL must be an http(s) URL, not {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path = path + ("/chat/completions" if path.endswith("/v1") else "/v1/chat/completions")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, path


class RemoteLM:
    def __init__(
        self,
        url: str,
        *,
        model: str = "",
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        max_new_tokens: int = 96,
        backoff_s: float = 0.25,
        max_parallel: int = 16,
    ) -> None:
        self.scheme, self.host, self.port, self.path = _endpoint(url)
        self.model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_new_tokens = max_new_tokens
        self.backoff_s = backoff_s
        self.max_parallel = max_parallel
        self.name = f"remote:{model or self.host}"

    @classmethod
    def from_settings(cls, settings: Any) -> RemoteLM:
        if not settings.llm_remote_url:
            raise ConfigError("LLM_BACKEND=remote needs LLM_REMOTE_URL")
        key = settings.llm_remote_api_key
        return cls(
            settings.llm_remote_url,
            model=settings.llm_remote_model,
            api_key=key.get_secret_value() if key is not None else None,
            timeout_s=settings.llm_timeout_s,
            retries=settings.llm_retries,
            max_new_tokens=settings.llm_max_new_tokens,
        )

    # -- HTTP -----------------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def _open(self, body: bytes) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        conn = self._connect()
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if resp.status == 200:
            return conn, resp
        try:
            detail = _error_message(resp.read(4096))
        except (OSError, http.client.HTTPException):
            detail = ""
        finally:
            conn.close()
        if resp.status in _RETRY_STATUSES:
            raise _Transient(
                f"HTTP {resp.status} {detail}".strip(), _retry_after(resp.getheader("Retry-After"))
            )
        raise LLMError(
            f"the language model server answered HTTP {resp.status}: {detail or resp.reason}",
            details={"status": resp.status},
        )

    def _events(self, resp: http.client.HTTPResponse) -> Iterator[str]:
        ctype = (resp.getheader("Content-Type") or "").lower()
        if "text/event-stream" not in ctype:  # a server that ignored stream=true
            obj = _json(resp.read())
            content = ((obj.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
            if content:
                yield content
            return
        while True:
            line = resp.readline()
            if not line:
                return  # connection closed after the last event
            text = line.decode("utf-8", "replace").strip()
            if not text or text.startswith(":") or not text.startswith("data:"):
                continue
            data = text[5:].strip()
            if data == "[DONE]":
                return
            obj = _json(data.encode())
            if "error" in obj:
                raise LLMError(f"the language model server reported: {_error_message(data.encode())}")
            choices = obj.get("choices") or []
            if not choices:
                continue
            piece = (choices[0].get("delta") or {}).get("content")
            if piece:
                yield piece

    # -- LanguageModel --------------------------------------------------------------------------
    def stream(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> Iterator[str]:
        payload: dict[str, Any] = {
            "messages": check_messages(messages),
            "max_tokens": max_new_tokens or self.max_new_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if self.model:
            payload["model"] = self.model
        return self._stream(json.dumps(payload).encode())

    def _stream(self, body: bytes) -> Iterator[str]:
        attempt = 0
        while True:
            sent = False
            try:
                conn, resp = self._open(body)
                try:
                    for piece in self._events(resp):
                        sent = True
                        yield piece
                    return
                finally:
                    conn.close()
            except (_Transient, OSError, http.client.HTTPException) as exc:
                reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, _Transient) else str(exc)
                if sent or attempt >= self.retries:
                    raise LLMUnavailable(
                        f"the language model server at {self.host}:{self.port} failed: {reason}",
                        details={"attempts": attempt + 1},
                    ) from exc
                delay = min(2.0, self.backoff_s * (2**attempt))
                if isinstance(exc, _Transient) and exc.retry_after is not None:
                    delay = exc.retry_after
                log.warning("llm remote: %s; retry %d in %.2fs", reason, attempt + 1, delay)
                time.sleep(delay)
                attempt += 1

    def generate(
        self, messages: Messages, *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> str:
        return "".join(self.stream(messages, max_new_tokens=max_new_tokens, temperature=temperature))

    def generate_batch(
        self, batch: Sequence[Messages], *, max_new_tokens: int | None = None, temperature: float = 0.0
    ) -> list[str]:
        """Concurrent requests: the server does the batching."""
        if not batch:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_parallel, len(batch))) as pool:
            futures = [
                pool.submit(self.generate, m, max_new_tokens=max_new_tokens, temperature=temperature)
                for m in batch
            ]
            return [f.result() for f in futures]

    def close(self) -> None:
        """Connections are per request; nothing is held."""


def _json(raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise LLMError("the language model server sent malformed JSON") from exc
    if not isinstance(obj, dict):
        raise LLMError("the language model server sent an unexpected JSON value")
    return obj


def _error_message(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:200]
    err = obj.get("error", obj) if isinstance(obj, dict) else obj
    if isinstance(err, dict):
        err = err.get("message") or err
    return str(err)[:200]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(5.0, float(value)))
    except ValueError:
        return None
