"""Shop examples: labelled customer messages a shop adds so that understanding adapts at once,
without retraining the encoder.

Each example is stored with the pooled sentence vector the understanding model computes anyway
(`RawPrediction.vector`), so comparing a message with the examples costs one matrix product and
no second encoder pass. The model's calibrated intent distribution is blended with a
nearest-example vote: the closer the nearest example, the more the vote counts, so a shop example
decides the phrasings it really resembles and leaves everything else to the classifier.

    p = (1 - w) * p_model + w * p_vote,   w = w_max * clamp((s1 - s_lo) / (s_hi - s_lo), 0, 1)

where s1 is the cosine similarity of the nearest example and p_vote a similarity-weighted vote of
the k nearest. The index holds only the shop's examples (thousands at most), never the catalog.
Persistence, versions and the refresh across workers are `nlu/example_store.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BlendSettings:
    k: int = 5  # nearest examples that vote
    s_lo: float = 0.55  # below this similarity the examples have no say
    s_hi: float = 0.85  # from this similarity on they have the full weight
    w_max: float = 0.85  # the largest share of the vote in the blended distribution
    sharpness: float = 20.0  # vote weight of an example: exp(sharpness * (similarity - 1))


class ExampleIndex:
    """Vectors and intents of the shop's examples; thread-safe swaps, lock-free reads."""

    def __init__(self, intents: Sequence[str], settings: BlendSettings | None = None) -> None:
        self.intents = list(intents)
        self._index = {name: i for i, name in enumerate(self.intents)}
        self.settings = settings or BlendSettings()
        self._lock = threading.Lock()
        self._vectors = torch.zeros(0, 0)
        self._labels = torch.zeros(0, dtype=torch.long)
        self.version: str | None = None

    def __len__(self) -> int:
        return int(self._labels.numel())

    def replace(self, vectors: torch.Tensor, intents: Sequence[str], version: str | None = None) -> None:
        """Swap in a new set of examples (vectors L2-normalised here; unknown intents skipped)."""
        keep = [i for i, name in enumerate(intents) if name in self._index]
        vecs = torch.nn.functional.normalize(vectors[keep].float(), dim=-1) if keep else torch.zeros(0, 0)
        labels = torch.tensor([self._index[intents[i]] for i in keep], dtype=torch.long)
        with self._lock:
            self._vectors, self._labels, self.version = vecs, labels, version

    def vote(self, vector: torch.Tensor) -> tuple[torch.Tensor, float] | None:
        """(vote distribution over intents, similarity of the nearest example), or None when empty."""
        vectors, labels = self._vectors, self._labels  # one consistent snapshot
        if labels.numel() == 0:
            return None
        sims = vectors @ torch.nn.functional.normalize(vector.float(), dim=-1)
        k = min(self.settings.k, int(sims.numel()))
        top, idx = torch.topk(sims, k)
        weights = torch.exp(self.settings.sharpness * (top - 1.0))
        dist = torch.zeros(len(self.intents))
        dist.index_add_(0, labels[idx], weights)
        return dist / dist.sum(), float(top[0])

    def adjust(self, probs: torch.Tensor, vector: torch.Tensor | None) -> torch.Tensor:
        """The model's distribution blended with the examples' vote (unchanged when none is near)."""
        if vector is None:
            return probs
        voted = self.vote(vector)
        if voted is None:
            return probs
        dist, nearest = voted
        s = self.settings
        w = s.w_max * min(1.0, max(0.0, (nearest - s.s_lo) / max(1e-6, s.s_hi - s.s_lo)))
        if w <= 0.0:
            return probs
        return (1.0 - w) * probs + w * dist
