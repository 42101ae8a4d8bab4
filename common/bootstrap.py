"""The composition root: the one place the product's collaborators are chosen and built.

`build(settings)` makes, in this order and once, a typed `Container`:

    settings -> graph store -> Redis (dialogue state) -> session store -> catalog service
             -> sentence encoder (shared) -> entity linker -> retriever (handlers, procedure search)
             -> understanding model -> shop-examples sync -> verbalizer -> dialogue engine

Nothing connects or loads here: the graph store connects on its first query, Redis on its first
command, the encoder the first time a vector is needed, and what loads weights or probes the
hardware (the understanding model, the verbalizer's language model, hence the engine) sits behind
`Lazy` and is built on its first `get()`. So building a container is free, several can live side
by side (tests), and the API (api/services.py), the commands (kgqa_cli.py, import_scripts/cli.py,
api/cli.py, qa/evaluate.py), bench/ and the tests all take their collaborators from here. Tests
swap fakes in through `build`'s keyword arguments.

The sentence encoder is built once and handed to both the entity linker and procedure search (one
model in memory). The state Redis is chosen by kg/backends/state_server.py's rule (`REDIS_URL`,
else the embedded state server beside an embedded graph, else a FalkorDB server's own connection,
`FalkorDBStore.redis`): its `StateRedis`, one per container, is the only place a Redis client is
made for the product's state (sessions, API keys, rate limits, import jobs, analytics, the audit log).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

import redis

from common.errors import ConfigError
from common.settings import Settings
from kg.audit import AuditSink
from kg.backends.state_server import StateRedis
from kg.catalog.service import CatalogService, NameVectors
from kg.store import GraphStore, open_store
from nlu.linking.encoder import TextEncoder
from nlu.linking.index import name_vector_text
from nlu.linking.linker import EntityLinker, LinkerConfig
from nlu.linking.search import NameSearch
from qa.engine import Engine, ExampleRefresher, Understander
from qa.retrieval import ProcedureSearch, Retriever
from qa.state import SessionStore
from qa.verbalizer import LLMVerbalizer, Verbalizer, build_verbalizer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


T = TypeVar("T")


class Default(Enum):
    """`build`'s "choose from the settings" marker, where None means "none at all"."""

    DEFAULT = "default"


DEFAULT: Literal[Default.DEFAULT] = Default.DEFAULT


class Lazy(Generic[T]):
    """A collaborator built on its first `get()`, once, whichever thread asks first. A build that
    raises is not remembered: the next `get()` tries again (the API decides how often)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None
        self._built = False

    def get(self) -> T:
        if not self._built:
            with self._lock:
                if not self._built:
                    self._value = self._build()
                    self._built = True
        return self._value  # type: ignore[return-value]  # T itself may include None

    @property
    def built(self) -> bool:
        return self._built

    def if_built(self) -> T | None:
        """The value when it has been built, else None (never builds)."""
        return self._value if self._built else None


class _SchemaOnce:
    """Keys and indexes, once per container, before the first query that needs them."""

    def __init__(self) -> None:
        self.done = False
        self.lock = threading.Lock()


@dataclass(frozen=True)
class Container:
    settings: Settings
    store: GraphStore  # connects on its first query; `graph()` also makes sure of the schema
    redis: StateRedis
    sessions: SessionStore
    catalog: CatalogService
    encoder: TextEncoder  # shared by the linker and procedure search; the model loads on first use
    linker: EntityLinker | None
    retriever: Retriever
    understander: Lazy[Understander]
    examples: Lazy[ExampleRefresher | None]
    verbalizer: Lazy[Verbalizer]
    engine: Lazy[Engine]
    clock: Callable[[], datetime]
    _schema: _SchemaOnce = field(default_factory=_SchemaOnce, repr=False, compare=False)

    def graph(self) -> GraphStore:
        """The store, with keys and indexes in place (which also makes an empty graph queryable) and
        built: a server that has just loaded its data builds their entries in the background, and
        look-ups meanwhile scan every node (waited for up to GRAPH_INDEX_WAIT_S; the name-vector index
        too unless READY_BEFORE_VECTOR_INDEX)."""
        if not self._schema.done:
            with self._schema.lock:
                if not self._schema.done:
                    from kg.queries.embeddings import VECTOR_LABEL
                    from kg.schema import ensure_schema, wait_for_indexes

                    ensure_schema(self.store)
                    wait_for_indexes(self.store, self.settings.graph_index_wait_s,
                                     ignore=(VECTOR_LABEL,) if self.settings.ready_before_vector_index else ())
                    self._schema.done = True
        return self.store

    def warm(self) -> Engine:
        """Build what a chat turn needs before the first one arrives (a worker's start; readiness
        waits for it): the engine, the understanding model, the linking index and the shop's field
        catalog, so no shopper's first question pays for a build."""
        self.graph()
        self.understander.get().understand("hello")
        if self.linker is not None:
            self.linker.warm()
        self.retriever.fields.catalog()
        return self.engine.get()  # last: a built engine is what readiness reports

    def local_audit(self) -> AuditSink:
        """The audit sink of a key-less local command (`./kgqa import`, `./kgqa up`): the state
        store's log, written as `cli:<user>`."""
        from kg.audit import local_sink

        return local_sink(self.settings, self.redis.client)

    def close(self) -> None:
        """Stop the language model's worker (if the engine was built) and close the graph store."""
        engine = self.engine.if_built()
        try:
            if engine is not None:
                engine.close()
        finally:
            self.store.close()


def settle_heap() -> None:
    """In a serving process, once warm: what was built (models, linking index, field catalogue) lives
    as long as the process, so take it out of the cyclic garbage collector's full passes, which
    otherwise walk every object of the indexes now and then (seconds at a million products, paid by
    whichever turn triggers one). Objects freed by reference counting are still freed."""
    gc.collect()
    gc.freeze()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def build(settings: Settings | None = None, *, store: GraphStore | None = None,
          redis_client: redis.Redis | None = None, sessions: SessionStore | None = None,
          understander: Understander | None = None, encoder_model: SentenceTransformer | None = None,
          linker: EntityLinker | None | Literal[Default.DEFAULT] = DEFAULT,
          linker_config: LinkerConfig | None = None, verbalizer: Verbalizer | None = None,
          examples: ExampleRefresher | None | Literal[Default.DEFAULT] = DEFAULT,
          threshold: float | None = None, clock: Callable[[], datetime] | None = None) -> Container:
    """Everything from `settings` (default: the environment's). A keyword given replaces what the
    settings would choose: `store` (e.g. one a test holds), `redis_client`, `sessions` (a store
    with its own key prefix), `understander` (a fake, or a model loaded with other options),
    `encoder_model` (a loaded sentence encoder to share), `linker` (None: no entity linking),
    `verbalizer`, `examples` (None: no shop-examples sync; by default there is one when the
    understander is the model), `threshold` (the out-of-scope threshold; default: the
    understander's), `clock` (pins "now": promotions, return windows)."""
    settings = settings or Settings()
    graph_store = store if store is not None else open_store(settings)
    state = StateRedis(settings, _graph_redis(graph_store), client=redis_client)
    session_store = sessions if sessions is not None else SessionStore(state.client, ttl_s=settings.session_ttl_s,
                                                                       graph_name=settings.graph_name)
    now = clock or _utcnow

    def schema_ready() -> GraphStore:
        return container.graph()

    encoder = TextEncoder(settings.encoder_path, model=encoder_model,
                          runtime="onnx" if settings.nlu_runtime == "onnx" else "torch",
                          cache_dir=settings.nlu_cache_dir or None, precision=settings.encoder_precision)
    vectors = NameVectors(embed=encoder.encode_bulk, dimension=lambda: encoder.dim, text=name_vector_text,
                          space=lambda: encoder.space) \
        if settings.linking_vectors == "graph" else None
    def sync_link_index(skus: Sequence[str] | None) -> None:  # bound late: the linker is made below
        if isinstance(entity_linker, EntityLinker) and entity_linker.in_graph:
            entity_linker.sync_graph_index(skus=skus)

    catalog = CatalogService(schema_ready, settings, vectors=vectors, link_index=sync_link_index)
    linker_config = (linker_config or LinkerConfig()).model_copy(
        update={"graph_vectors": settings.linking_vectors == "graph", "graph_index_wait_s": settings.graph_index_wait_s})
    entity_linker = (EntityLinker(graph_store, config=linker_config, encoder=encoder,
                                  encoder_path=settings.encoder_path, currency=settings.store_currency,
                                  snapshot=(Path(settings.data_dir) / "linking" / f"{settings.graph_name}.index"
                                            if settings.linking_snapshot or settings.linking_index == "graph"
                                            else None),
                                  in_graph=settings.linking_index == "graph")
                     if linker is DEFAULT else linker)
    procedures = ProcedureSearch(graph_store, settings.encoder_path, threshold=settings.procedure_threshold,
                                 encoder_factory=lambda: encoder)
    retriever = Retriever(graph_store, procedures, currency=settings.store_currency, clock=now,
                          link_product=(None if entity_linker is None else
                                        lambda text, words: entity_linker.link_mention(text, "PRODUCT", context=words)),
                          names=NameSearch(graph_store))
    lazy_understander: Lazy[Understander] = Lazy(
        (lambda: understander) if understander is not None else (lambda: _load_understander(settings)))
    lazy_examples: Lazy[ExampleRefresher | None] = Lazy(
        (lambda: examples) if examples is not DEFAULT
        else (lambda: _shop_examples(settings, graph_store, lazy_understander.get())))
    lazy_verbalizer: Lazy[Verbalizer] = Lazy(
        (lambda: verbalizer) if verbalizer is not None else (lambda: _verbalizer(settings, entity_linker)))

    def make_engine() -> Engine:
        if sessions is None:
            state.check()  # no Redis for the dialogue state: a configuration error, found here
        return Engine(sessions=session_store, understander=lazy_understander.get(), retriever=retriever,
                      verbalizer=lazy_verbalizer.get(), linker=entity_linker, threshold=threshold, clock=now,
                      examples=lazy_examples.get(), pending_ttl_s=settings.pending_ttl_s,
                      handoff_timeout_s=settings.handoff_timeout_s)

    container = Container(settings=settings, store=graph_store, redis=state, sessions=session_store,
                          catalog=catalog, encoder=encoder, linker=entity_linker, retriever=retriever,
                          understander=lazy_understander, examples=lazy_examples, verbalizer=lazy_verbalizer,
                          engine=Lazy(make_engine), clock=now)
    return container


def _graph_redis(store: GraphStore) -> Callable[[], redis.Redis] | None:
    """The graph server's own Redis, for state that lives there (a FalkorDB by URL without
    REDIS_URL): the store's current connection, a new one after a reconnect. None for another graph."""
    from kg.backends.falkordb import FalkorDBStore

    if not isinstance(store, FalkorDBStore):
        return None
    return lambda: store.redis


def _load_understander(settings: Settings) -> Understander:
    """The trained joint model (torch loads here, not at import)."""
    try:
        from nlu.understand import Understander as ModelUnderstander
    except ImportError as exc:
        raise ConfigError("no understanding model: nlu/understand.py cannot be imported") from exc
    return ModelUnderstander.load(settings)


def _shop_examples(settings: Settings, store: GraphStore, understander: Understander) -> ExampleRefresher | None:
    """The shop examples (nlu/example_store.py) for the understanding model; none for a fake."""
    from nlu.understand import Understander as ModelUnderstander

    if not isinstance(understander, ModelUnderstander):
        return None
    from nlu.example_store import ExampleSync

    return ExampleSync(store, understander, settings.shop_examples_refresh_s)


def _verbalizer(settings: Settings, linker: EntityLinker | None) -> Verbalizer:
    """LLM_BACKEND's writer behind the safety filter. With a language model, the grounding guard
    follows the shop's names through the linker's index (no extra graph reads)."""
    verbalizer = build_verbalizer(settings)
    if isinstance(verbalizer, LLMVerbalizer) and linker is not None:
        verbalizer.guard.follow(linker.catalogue_version, linker.catalogue_names)
    return verbalizer
