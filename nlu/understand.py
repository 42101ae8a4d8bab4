"""`Understander`: a shopper's message in, an `Understanding` (intent, ranking, entities) out.

Load once (`Understander.load(settings)`), then call `understand` / `understand_batch` from any
number of threads: inference runs under `torch.inference_mode` on a model in eval mode, each call
keeps its state in local variables, and the one shared object that is not thread-safe (the Rust
tokenizer, which keeps its padding and truncation settings between calls) sits behind a lock.

Whatever the input (empty, whitespace, 10,000 characters, emoji, another script, NUL and control
characters) the answer is a sane `Understanding`: text the model cannot read is `out_of_scope`
with confidence 0; an intent whose calibrated confidence is below `intent_threshold` becomes
`out_of_scope` with that (low) confidence, and `ranking` keeps the model's own order. Entity
offsets always index the original text (long text is cut before tokenising, never rewritten).
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see nlu/model.py

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from common.errors import NLUError
from common.settings import NLURuntime, Settings
from nlu import model as nlu_model
from nlu.shop_examples import ExampleIndex
from nlu.types import Entity, IntentScore, Understanding

OUT_OF_SCOPE = "out_of_scope"
RANKING_SIZE = 5
CHARS_PER_TOKEN = 24  # text beyond max_length * this is never reached by the tokenizer anyway
# A padded batch to trace the model with (see nlu.model.trace_for_inference).
TRACE_EXAMPLE = ("is the aurora x2 in stock in black, and how much is it?", "hi")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawPrediction:
    """Calibrated probabilities and decoded spans for one text (what `understand` is built on)."""

    probs: torch.Tensor  # over config.intents
    spans: list[tuple[int, int, str]]  # (start, end, entity type) in the original text
    vector: torch.Tensor | None = None  # the pooled sentence vector, L2-normalised


def _words(word_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]]) -> list[list[int]]:
    """[first token index, start, end] per word; continuation sub-tokens only widen the word."""
    words: list[list[int]] = []
    last_word: int | None = None
    for j, (wid, (s, e)) in enumerate(zip(word_ids, offsets, strict=True)):
        if wid is None or e <= s:
            continue
        if wid == last_word and words:
            words[-1][2] = max(words[-1][2], e)
            continue
        last_word = wid
        words.append([j, s, e])
    return words


def _spans(words: Sequence[Sequence[int]], tags: Sequence[str], text: str | None) -> list[tuple[int, int, str]]:
    """Spans from one BIO tag per word. An `I-X` that does not continue an open `X` starts one;
    a `B-X` that touches an open `X` with no space between ("#" + "10452") continues it."""
    spans: list[list[Any]] = []
    open_span: list[Any] | None = None
    for (_, s, e), tag in zip(words, tags, strict=True):
        if tag == "O" or "-" not in tag:
            open_span = None
            continue
        prefix, etype = tag.split("-", 1)
        if open_span is not None and open_span[2] == etype and (prefix == "I" or s == open_span[1]):
            open_span[1] = e
            continue
        open_span = [s, e, etype]
        spans.append(open_span)
    if text is not None:  # "#10452": the sign belongs to the order number when nothing separates them
        for sp in spans:
            if sp[2] == "ORDER_ID" and sp[0] > 0 and text[sp[0] - 1] == "#":
                sp[0] -= 1
    return [(int(s), int(e), str(t)) for s, e, t in spans]


def decode_bio(tags: Sequence[str], word_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]],
               text: str | None = None) -> list[tuple[int, int, str]]:
    """Valid spans from per-token BIO tags (a word's tag is its first sub-token's tag).

    Offsets are character positions of the text that was tokenised.
    """
    words = _words(word_ids, offsets)
    return _spans(words, [tags[j] for j, _, _ in words], text)


def _transitions(tag_names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(tag_names)
    allowed = torch.zeros(n, n)
    start = torch.zeros(n)
    for j, cur in enumerate(tag_names):
        if cur.startswith("I-"):
            start[j] = float("-inf")
            for i, prev in enumerate(tag_names):
                if prev[2:] != cur[2:] or prev == "O":
                    allowed[i, j] = float("-inf")
    return allowed, start


def viterbi_bio(log_probs: torch.Tensor, word_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]],
                tag_names: Sequence[str], text: str | None = None,
                transitions: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[tuple[int, int, str]]:
    """The most probable valid BIO path over words (an `I-X` only after `B-X` or `I-X`).

    `log_probs` is [tokens, tags]; a word is scored by its first sub-token. `transitions` is
    `_transitions(tag_names)`, passed in by callers that decode many texts.
    """
    words = _words(word_ids, offsets)
    if not words:
        return []
    allowed, start = transitions if transitions is not None else _transitions(tag_names)
    emissions = log_probs[[j for j, _, _ in words]].float()
    score = emissions[0] + start
    back: list[torch.Tensor] = []
    for w in range(1, len(words)):
        total = score.unsqueeze(1) + allowed  # [prev, cur]
        best, idx = total.max(dim=0)
        back.append(idx)
        score = best + emissions[w]
    path = [int(score.argmax())]
    for idx in reversed(back):
        path.append(int(idx[path[-1]]))
    path.reverse()
    return _spans(words, [tag_names[t] for t in path], text)


def oos_log_ratio(probs: torch.Tensor, oos_index: int) -> float:
    """ln(p(best in-scope intent) / p(out_of_scope)) of one probability vector: below the model's
    out-of-scope margin, a message is declined (nlu/calibrate.py chooses the margin)."""
    in_scope = torch.cat([probs[:oos_index], probs[oos_index + 1:]])
    return math.log(max(float(in_scope.max()), 1e-12)) - math.log(max(float(probs[oos_index]), 1e-12))


class Understander:
    """The loaded joint model plus its tokenizer; build it with `Understander.load`."""

    def __init__(self, model: torch.nn.Module | nlu_model.OnnxModel, config: nlu_model.NLUConfig, tokenizer: Any, *,
                 threshold: float, model_dir: Path | None = None, load_seconds: float = 0.0) -> None:
        self.model = model
        self.config = config
        self.tokenizer = tokenizer
        self.threshold = threshold
        self.model_dir = model_dir
        self.load_seconds = load_seconds
        self.quantized = False
        self.runtime: NLURuntime = "eager"  # how `model` runs: onnx, torchscript or eager (see `load`)
        self.max_chars = config.max_length * CHARS_PER_TOKEN
        self._tok_lock = threading.Lock()
        self._oos = config.intents.index(OUT_OF_SCOPE)
        self.oos_margin = config.oos_margin  # see nlu/calibrate.py; Settings.intent_oos_margin overrides
        self._transitions = _transitions(config.bio_tags)  # read-only after this
        # The shop's labelled examples (nlu/shop_examples.py), blended into every prediction.
        self.examples = ExampleIndex(config.intents)

    @classmethod
    def load(cls, settings: Settings | None = None, *, model_dir: str | Path | None = None,
             encoder_path: str | Path | None = None, threshold: float | None = None, merge: bool = True,
             quantize: bool | None = None, runtime: NLURuntime | None = None,
             num_threads: int | None = None) -> Understander:
        """Load the trained model (LoRA merged for speed unless `merge=False`) and run it with
        `runtime` (default `Settings.nlu_runtime`): "onnx" (exported at load, run by onnxruntime),
        "torchscript" (traced and frozen) or "eager"; an unmerged model always runs eagerly. With
        `quantize` (default `Settings.nlu_quantize`, off) the feed-forward up-projections are int8
        (`nlu.model.QUANTIZE_MODULES`), a torch feature: the ONNX runtime then gives way to TorchScript.

        `num_threads` (default `Settings.nlu_threads`) sets the intra-op threads (torch's for the
        process, onnxruntime's for its session); 0 keeps torch's default, lowered to the number of
        cores when torch would use more.
        """
        started = time.perf_counter()
        settings = settings or Settings()
        model_dir = Path(model_dir or settings.nlu_model_dir)
        encoder_path = encoder_path or settings.encoder_path
        threads = settings.nlu_threads if num_threads is None else num_threads
        cpus = os.cpu_count() or 1
        if threads:
            torch.set_num_threads(threads)
        elif torch.get_num_threads() > cpus:
            torch.set_num_threads(cpus)
        quantize = settings.nlu_quantize if quantize is None else quantize
        tokenizer = nlu_model.load_tokenizer(encoder_path)
        wanted: NLURuntime = settings.nlu_runtime if runtime is None else runtime
        if not merge:
            wanted = "eager"
        elif wanted == "onnx" and quantize:
            log.info("NLU_QUANTIZE is a torch feature: the understanding model runs as TorchScript")
            wanted = "torchscript"
        example = tokenizer(list(TRACE_EXAMPLE), padding=True, return_tensors="pt")
        served: torch.nn.Module | nlu_model.OnnxModel
        if wanted == "onnx":
            served, config = nlu_model.load_onnx(model_dir, encoder_path, example,
                                                 threads=threads or torch.get_num_threads(),
                                                 cache_dir=settings.nlu_cache_dir or None)
        else:
            model, config = nlu_model.load(model_dir, encoder_path, merge=merge, quantize=quantize and merge)
            served = model
            if wanted == "torchscript":
                try:
                    served = nlu_model.trace_for_inference(model, example["input_ids"], example["attention_mask"])
                except (RuntimeError, ValueError) as exc:  # an encoder TorchScript cannot follow: stay eager
                    log.warning("understanding model not traced (%s); running it eagerly", exc)
                    wanted = "eager"
        out = cls(served, config, tokenizer,
                  threshold=(threshold if threshold is not None else settings.intent_threshold
                             if settings.intent_threshold is not None else config.threshold),
                  model_dir=model_dir, load_seconds=time.perf_counter() - started)
        if settings.intent_oos_margin is not None:
            out.oos_margin = settings.intent_oos_margin if settings.intent_oos_margin >= 0 else None
        out.quantized = quantize and merge
        out.runtime = wanted
        return out

    # -- inference ------------------------------------------------------------------------------
    def _readable(self, text: str) -> bool:
        return bool(text.strip())

    @staticmethod
    def _encodable(text: str) -> str:
        """Lone surrogates (valid in JSON, not in UTF-8) become U+FFFD: same length, same offsets."""
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)

    def predict_raw(self, texts: Sequence[str]) -> list[RawPrediction | None]:
        """Probabilities and spans per text; None for text with nothing the model can read."""
        cut = [self._encodable(t[: self.max_chars]) for t in texts]
        todo = [i for i, t in enumerate(cut) if self._readable(t)]
        out: list[RawPrediction | None] = [None] * len(texts)
        if not todo:
            return out
        with self._tok_lock:
            enc = self.tokenizer([cut[i] for i in todo], truncation=True, max_length=self.config.max_length,
                                 padding=True, return_offsets_mapping=True, return_tensors="pt")
            word_ids = [enc.word_ids(k) for k in range(len(todo))]
        ids, mask = enc["input_ids"], enc["attention_mask"]
        unk = self.tokenizer.unk_token_id
        with torch.inference_mode():
            intent_logits, tag_logits, pooled = self.model(ids, mask)
            probs = torch.softmax(intent_logits.float() / self.config.temperature, dim=-1)
            vectors = torch.nn.functional.normalize(pooled.float(), dim=-1)
            tag_log_probs = torch.log_softmax(tag_logits.float(), dim=-1)
        tags = self.config.bio_tags
        offsets = enc["offset_mapping"].tolist()
        for k, i in enumerate(todo):
            n = int(mask[k].sum())
            wids = word_ids[k][:n]
            content = [int(ids[k, j]) for j in range(n) if wids[j] is not None]
            if not content or (unk is not None and all(t == unk for t in content)):
                continue  # nothing but unknown symbols (emoji-only, an unsupported script)
            spans = viterbi_bio(tag_log_probs[k, :n], wids, [tuple(o) for o in offsets[k][:n]], tags, cut[i],
                                transitions=self._transitions)
            out[i] = RawPrediction(probs=probs[k], spans=spans, vector=vectors[k])
        return out

    def _to_understanding(self, text: str, raw: RawPrediction | None) -> Understanding:
        if raw is None:
            return Understanding(text=text, intent=IntentScore(name=OUT_OF_SCOPE, confidence=0.0))
        probs = self.examples.adjust(raw.probs, raw.vector)
        conf, idx = torch.topk(probs, k=min(RANKING_SIZE, probs.numel()))
        ranking = [IntentScore(name=self.config.intents[int(i)], confidence=round(float(c), 6))
                   for c, i in zip(conf, idx, strict=True)]
        best = ranking[0]
        declined = best.confidence < self.threshold
        if not declined and self.oos_margin is not None and best.name != OUT_OF_SCOPE:
            declined = oos_log_ratio(probs, self._oos) < self.oos_margin  # out_of_scope nearly won
        intent = IntentScore(name=OUT_OF_SCOPE, confidence=best.confidence) if declined else best
        entities = [Entity(type=etype, text=text[s:e], start=s, end=e) for s, e, etype in raw.spans
                    if text[s:e].strip()]
        return Understanding(text=text, intent=intent, ranking=ranking, entities=entities)

    def vectors(self, texts: Sequence[str]) -> list[torch.Tensor | None]:
        """Pooled sentence vectors (L2-normalised) of `texts`, as shop examples are compared by;
        None for text with nothing the model can read."""
        out: list[torch.Tensor | None] = []
        for b in range(0, len(texts), 32):
            out.extend(r.vector if r is not None else None for r in self.predict_raw(list(texts[b:b + 32])))
        return out

    def understand(self, text: str) -> Understanding:
        return self.understand_batch([text])[0]

    def understand_batch(self, texts: Sequence[str], batch_size: int = 32) -> list[Understanding]:
        clean = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in texts]
        out: list[Understanding] = []
        try:
            for b in range(0, len(clean), batch_size):
                chunk = clean[b:b + batch_size]
                out.extend(self._to_understanding(t, r) for t, r in zip(chunk, self.predict_raw(chunk), strict=True))
        except NLUError:
            raise
        except (RuntimeError, ValueError) as exc:  # torch or tokenizer failure: a model error, not a 500
            raise NLUError(f"understanding failed: {exc}") from None
        return out
