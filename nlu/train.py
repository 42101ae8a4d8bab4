"""Training the joint model on a CPU: seeded, with progress bars, in a few minutes.

Training phrasings are split once more: about a tenth of each intent's phrasings (never the
evaluation file) become a validation set, filled with training names, on which the softmax
temperature is fitted and the per-epoch figures are reported. The model is then saved with its
temperature; the held-out evaluation is `nlu.evaluate`.
"""

from __future__ import annotations

import os

# OpenMP threads that spin while they wait make torch several times slower on a small, shared CPU
# (two cores, web workers beside the model). Only effective before torch first loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from common.errors import NLUError
from nlu import model as nlu_model
from nlu.catalog import Catalog
from nlu.dataset import (
    IGNORE_INDEX,
    Augmentation,
    Encoded,
    Example,
    build_examples,
    encode,
    load_phrasings,
    split_validation,
    train_phrasing_files,
)
from nlu.external import read_clinc
from nlu.labels import INTENTS
from nlu.synonyms import load_table, swap_synonym


@dataclass
class TrainOptions:
    epochs: int = 3
    seed: int = 13
    batch_size: int = 32
    lr: float = 1e-3  # LoRA adapters and heads
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_length: int = 48
    per_intent: int = 280  # filled examples per intent and epoch's data set
    val_fraction: float = 0.1
    augment: bool = True  # generic and made-up names beside the catalog's (training only)
    junk_fraction: float = 0.25  # share of out_of_scope examples that are foreign script / emoji / mashing
    tag_loss_weight: float = 2.0
    pooling: str = "mean"
    lora_r: int = 16
    lora_alpha: int = 32
    num_threads: int | None = None
    # CLINC150 (outside, crowd-written): its train split's out-of-scope and other-domain queries are
    # out_of_scope examples and its shop intents (order status, greetings...) mapped ones; its val
    # split joins the validation set that temperature and threshold are chosen on. None: not used.
    clinc_path: str | None = None
    clinc_other: int = 4000  # other-domain CLINC queries sampled for training (of ~13,000)
    clinc_val_other: int = 600
    target_oos_recall: float = 0.95  # the threshold is the lowest reaching this on validation
    # A stronger sentence encoder as a training-time teacher (e.g. all-mpnet-base-v2): the
    # student's pooled vector, through a projection used only in training, is pulled towards the
    # teacher's embedding of the same text, which keeps the paraphrase knowledge that fine-tuning
    # on one team's phrasings wears away. None: no teacher. Never needed at run time.
    synonym_share: float = 0.5  # share of phrasings that get a WordNet-synonym variant (nlu/synonyms.py)
    teacher_path: str | None = None
    teacher_weight: float = 1.0
    teacher_cache: str | None = None  # a directory where teacher embeddings are kept between runs


@dataclass
class TrainReport:
    out_dir: str
    seconds: float
    n_train: int
    n_val: int
    temperature: float
    val_intent_accuracy: float
    val_ece_before: float
    val_ece_after: float
    val_entity_token_accuracy: float
    threshold: float = 0.5
    epochs: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _batches(data: Sequence[Encoded], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding), in shuffled order."""
    idx = list(range(len(data)))
    rng.shuffle(idx)
    chunk = batch_size * 16
    batches: list[list[int]] = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c:c + chunk], key=lambda i: len(data[i].input_ids))
        batches.extend(part[b:b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    tags = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
    for i, e in enumerate(items):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        mask[i, :n] = 1
        tags[i, :n] = torch.tensor(e.labels)
    return {"input_ids": ids, "attention_mask": mask, "tags": tags,
            "intent": torch.tensor([e.intent for e in items], dtype=torch.long)}


@torch.inference_mode()
def predict_logits(model: nn.Module, data: Sequence[Encoded], pad_id: int, batch_size: int = 64,
                   ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.eval()
    intents: list[torch.Tensor] = []
    tags: list[torch.Tensor] = []
    order = sorted(range(len(data)), key=lambda i: len(data[i].input_ids))
    out_i: dict[int, torch.Tensor] = {}
    out_t: dict[int, torch.Tensor] = {}
    for b in range(0, len(order), batch_size):
        ids = order[b:b + batch_size]
        batch = collate([data[i] for i in ids], pad_id)
        il, tl, _ = model(batch["input_ids"], batch["attention_mask"])
        for k, i in enumerate(ids):
            out_i[i] = il[k]
            out_t[i] = tl[k, : len(data[i].input_ids)]
    intents = [out_i[i] for i in range(len(data))]
    tags = [out_t[i] for i in range(len(data))]
    return (torch.stack(intents) if intents else torch.zeros(0, len(INTENTS))), tags


def _val_figures(intent_logits: torch.Tensor, tag_logits: list[torch.Tensor], data: Sequence[Encoded]
                 ) -> tuple[float, float]:
    if not data:
        return 0.0, 0.0
    labels = torch.tensor([e.intent for e in data])
    acc = float((intent_logits.argmax(1) == labels).float().mean())
    right = total = 0
    for logits, e in zip(tag_logits, data, strict=True):
        gold = torch.tensor(e.labels)
        keep = (gold != IGNORE_INDEX) & ((gold != 0) | (logits.argmax(-1) != 0))
        right += int((logits.argmax(-1)[keep] == gold[keep]).sum())
        total += int(keep.sum())
    return acc, (right / total if total else 1.0)


def make_datasets(catalog: Catalog, options: TrainOptions, phrasing_files: Sequence[Path] | None = None,
                  ) -> tuple[list[Example], list[Example]]:
    files = list(phrasing_files) if phrasing_files is not None else train_phrasing_files()
    if not files:
        raise NLUError("no training phrasing files (nlu/data/train_phrasings*.yaml)")
    phrasings = load_phrasings(files)
    missing = [i for i in INTENTS if i not in phrasings]
    if missing:
        raise NLUError(f"no training phrasings for intents {missing}", details={"missing": missing})
    train_names, held_out = catalog.split()
    train_p, val_p = split_validation(phrasings, options.val_fraction)
    if options.synonym_share > 0:
        train_p = with_synonyms(train_p, load_table(), random.Random(options.seed + 7), options.synonym_share)
    augmentation = None
    if options.augment:
        # Never a held-out name: those are what the evaluation measures generalisation on.
        train_side = {n.lower() for n in (*train_names.brands, *train_names.categories, *train_names.attribute_values)}
        exclude = [n for n in (*held_out.brands, *held_out.categories, *held_out.attribute_values)
                   if n.lower() not in train_side]
        augmentation = Augmentation.build(options.seed, exclude=exclude)
    train = build_examples(train_p, train_names, per_intent=options.per_intent, seed=options.seed,
                           junk_fraction=options.junk_fraction, min_fills=2, augmentation=augmentation)
    val = build_examples(val_p, train_names, per_intent=max(20, options.per_intent // 10),
                         seed=options.seed + 100, junk_fraction=options.junk_fraction)
    if options.clinc_path:
        train += clinc_examples(options.clinc_path, "train", options.clinc_other, options.seed)
        val += clinc_examples(options.clinc_path, "val", options.clinc_val_other, options.seed)
        random.Random(options.seed).shuffle(train)
    return train, val


def with_synonyms(phrasings: dict[str, list[str]], table: dict[str, list[str]], rng: random.Random,
                  share: float) -> dict[str, list[str]]:
    """Each intent's phrasings plus, for about `share` of them, a variant with one domain word
    swapped for a WordNet synonym ("refund" -> "reimbursement"); out-of-scope phrasings stay as
    they are."""
    out: dict[str, list[str]] = {}
    for intent, items in phrasings.items():
        extra = []
        if intent != "out_of_scope":
            for p in items:
                if rng.random() < share and (variant := swap_synonym(p, table, rng)) is not None:
                    extra.append(variant)
        out[intent] = list(dict.fromkeys([*items, *extra]))
    return out


def clinc_examples(path: str | Path, split: str, n_other: int, seed: int) -> list[Example]:
    """CLINC150 `split` in this shop's labels: every mapped and out-of-scope query and `n_other`
    other-domain ones, drawn evenly over CLINC's intents (see nlu/external.py)."""
    data = read_clinc(path, split)
    by_intent: dict[str, list[Example]] = {}
    for e in data.other_domain:
        by_intent.setdefault(e.phrasing, []).append(e)
    rng = random.Random(seed)
    per = max(1, n_other // max(1, len(by_intent)))
    other = [e for k in sorted(by_intent) for e in rng.sample(by_intent[k], min(per, len(by_intent[k])))]
    return [*data.in_scope, *other, *data.oos]


def teacher_vectors(texts: Sequence[str], teacher_path: str, cache_dir: str | None, *, progress: bool,
                    log: Any = print) -> torch.Tensor:
    """The teacher's normalised sentence embeddings of `texts` (sentence-transformers), cached per
    text in `cache_dir` so repeated trainings embed only new texts."""
    import hashlib

    from sentence_transformers import SentenceTransformer

    cache: dict[str, torch.Tensor] = {}
    cache_file = None
    if cache_dir:
        weights = sorted(Path(teacher_path).glob("*.safetensors")) or sorted(Path(teacher_path).glob("*.bin"))
        ident = "|".join(f"{w.name}:{w.stat().st_size}" for w in weights) or str(Path(teacher_path).resolve())
        key = hashlib.sha256(ident.encode()).hexdigest()[:12]  # the same teacher wherever it is unpacked
        cache_file = Path(cache_dir) / f"teacher-{Path(teacher_path).name}-{key}.pt"
        if cache_file.is_file():
            cache = torch.load(cache_file, weights_only=True)
    todo = sorted({t for t in texts if t not in cache})
    if todo:
        log(f"teacher: embedding {len(todo)} texts with {Path(teacher_path).name}")
        teacher = SentenceTransformer(str(teacher_path), device="cpu")
        vecs = teacher.encode(todo, batch_size=64, normalize_embeddings=True, convert_to_tensor=True,
                              show_progress_bar=progress)
        for t, v in zip(todo, vecs, strict=True):
            cache[t] = v.detach().cpu().float().clone()
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            torch.save(cache, tmp)
            tmp.replace(cache_file)
    return torch.stack([cache[t] for t in texts])


def choose_threshold(probs: torch.Tensor, labels: torch.Tensor, oos_index: int, target_recall: float,
                     lo: float = 0.2, hi: float = 0.9) -> float:
    """The lowest confidence threshold (in [lo, hi]) at which at least `target_recall` of the
    out-of-scope validation messages are declined; in-scope messages then lose as little as possible."""
    conf, pred = probs.max(dim=1)
    oos = labels == oos_index
    if not bool(oos.any()):
        return lo
    for step in range(int(round((hi - lo) * 100)) + 1):
        t = lo + step / 100
        declined = (pred == oos_index) | (conf < t)
        if float(declined[oos].float().mean()) >= target_recall:
            return round(t, 2)
    return hi


def train(
    catalog: Catalog,
    out_dir: str | Path,
    encoder_path: str | Path,
    options: TrainOptions | None = None,
    *,
    phrasing_files: Sequence[Path] | None = None,
    progress: bool = True,
    log: Any = print,
) -> TrainReport:
    options = options or TrainOptions()
    started = time.perf_counter()
    torch.set_num_threads(options.num_threads or max(1, os.cpu_count() or 1))
    seed_everything(options.seed)

    train_ex, val_ex = make_datasets(catalog, options, phrasing_files)
    config = nlu_model.NLUConfig(
        max_length=options.max_length, pooling=options.pooling,  # type: ignore[arg-type]
        lora=nlu_model.LoraSettings(r=options.lora_r, alpha=options.lora_alpha),
    )
    tokenizer = nlu_model.load_tokenizer(encoder_path)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train_enc = encode(train_ex, tokenizer, options.max_length)
    val_enc = encode(val_ex, tokenizer, options.max_length)
    log(f"data: {len(train_enc)} training and {len(val_enc)} validation examples, "
        f"{len(catalog.split()[0].products)} training products ({time.perf_counter() - started:.1f}s)")

    targets = proj = None
    if options.teacher_path:
        targets = teacher_vectors([e.text for e in train_ex], options.teacher_path, options.teacher_cache,
                                  progress=progress, log=log)
    seed_everything(options.seed)
    model = nlu_model.build_for_training(encoder_path, config)
    params = [p for p in model.parameters() if p.requires_grad]
    if targets is not None:  # training-only projection into the teacher's space; never saved
        proj = nn.Linear(model.intent_head.in_features, targets.shape[1])
        params += list(proj.parameters())
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    rng = random.Random(options.seed)
    steps_per_epoch = (len(train_enc) + options.batch_size - 1) // options.batch_size
    total = steps_per_epoch * options.epochs
    warm = max(1, int(total * options.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    intent_loss = nn.CrossEntropyLoss()
    tag_loss = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    history: list[dict[str, float]] = []

    for epoch in range(options.epochs):
        model.train()
        running = 0.0
        batches = _batches(train_enc, options.batch_size, rng)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{options.epochs}", disable=not progress, unit="batch")
        for n, ids in enumerate(bar, 1):
            batch = collate([train_enc[i] for i in ids], pad_id)
            il, tl, pooled = model(batch["input_ids"], batch["attention_mask"])
            loss = intent_loss(il, batch["intent"]) + options.tag_loss_weight * tag_loss(
                tl.reshape(-1, tl.shape[-1]), batch["tags"].reshape(-1))
            if proj is not None and targets is not None:
                cos = nn.functional.cosine_similarity(proj(pooled), targets[ids], dim=-1)
                loss = loss + options.teacher_weight * (1.0 - cos).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            running += float(loss.detach())
            if n % 10 == 0:
                bar.set_postfix(loss=f"{running / n:.4f}")
        vi, vt = predict_logits(model, val_enc, pad_id)
        acc, tok = _val_figures(vi, vt, val_enc)
        history.append({"epoch": epoch + 1, "loss": running / max(1, len(batches)), "val_intent_accuracy": acc,
                        "val_entity_token_accuracy": tok})
        log(f"epoch {epoch + 1}: loss {running / max(1, len(batches)):.4f}, validation intent accuracy {acc:.4f}, "
            f"entity token accuracy {tok:.4f} ({time.perf_counter() - started:.0f}s)")

    vi, vt = predict_logits(model, val_enc, pad_id)
    labels = torch.tensor([e.intent for e in val_enc], dtype=torch.long)
    temperature = nlu_model.fit_temperature(vi, labels)
    ece_before = nlu_model.expected_calibration_error(vi.softmax(-1), labels)
    ece_after = nlu_model.expected_calibration_error((vi / temperature).softmax(-1), labels)
    acc, tok = _val_figures(vi, vt, val_enc)
    threshold = choose_threshold((vi / temperature).softmax(-1), labels, INTENTS.index("out_of_scope"),
                                 options.target_oos_recall)
    seconds = time.perf_counter() - started
    config.temperature = temperature
    config.threshold = threshold
    config.training = {
        "options": asdict(options), "seconds": round(seconds, 1), "n_train": len(train_enc), "n_val": len(val_enc),
        "catalog": catalog.summary(), "catalog_source": catalog.source, "val_intent_accuracy": round(acc, 4),
        "val_ece_before": round(ece_before, 4), "val_ece_after": round(ece_after, 4), "threshold": threshold,
        "phrasing_files": [Path(p).name for p in (phrasing_files or train_phrasing_files())],
    }
    nlu_model.save(model, config, out_dir)
    log(f"temperature {temperature:.3f} (validation ECE {ece_before:.4f} -> {ece_after:.4f}), "
        f"out-of-scope threshold {threshold:.2f}; "
        f"saved to {out_dir}; training took {seconds / 60:.1f} min")
    return TrainReport(out_dir=str(out_dir), seconds=seconds, n_train=len(train_enc), n_val=len(val_enc),
                       temperature=temperature, val_intent_accuracy=acc, val_ece_before=ece_before,
                       val_ece_after=ece_after, val_entity_token_accuracy=tok, threshold=threshold,
                       epochs=history)
