"""The composition root (common/bootstrap.py): building is free, Redis has one construction path,
the slow collaborators are built once on first use, and fakes swap in through `build`."""

from __future__ import annotations

import threading

import pytest

from common import bootstrap
from common.errors import ConfigError
from common.settings import Settings
from kg.backends.embedded import free_port


def _settings(**over: object) -> Settings:
    base: dict[str, object] = {"_env_file": None, "graph_name": "bootstrap_test", "llm_backend": "none"}
    base.update(over)
    return Settings(**base)  # type: ignore[arg-type]


def test_building_connects_to_nothing_and_loads_nothing():
    # nothing listens on these ports: any connection attempt during build would fail
    app = bootstrap.build(_settings(graph_url=f"falkordb://127.0.0.1:{free_port()}",
                                    redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    assert not app.understander.built and not app.verbalizer.built and not app.engine.built
    assert app.linker is not None and app.linker.encoder is app.encoder  # one encoder, shared
    assert app.retriever.procedures is not None
    assert app.retriever.procedures.threshold == app.settings.procedure_threshold == 0.42
    app.close()


def test_one_redis_client_for_sessions_and_the_api():
    from api.services import Services

    app = bootstrap.build(_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    client = app.redis.client()
    assert app.redis.client() is client and app.redis.separate
    services = Services(app)
    assert services.redis() is client and services.sessions is app.sessions
    assert app.sessions._client() is client
    app.close()


def test_the_embedded_graph_gets_a_state_server_of_its_own(tmp_path):
    from kg.backends.state_server import StateRedis, state_dir

    # the state Redis is kg/backends/state_server.py's, chosen by its rule; nothing starts at build
    app = bootstrap.build(_settings(graph_url="falkordb://embedded", data_dir=tmp_path))
    assert isinstance(app.redis, StateRedis) and app.redis.separate and not app.redis.shares_graph_server
    assert app.redis.embedded is not None and app.redis.embedded.data_dir == state_dir(tmp_path)
    assert app.redis.embedded.current() is None
    app.close()


def test_without_redis_url_a_graph_that_is_not_falkordb_is_a_configuration_error():
    app = bootstrap.build(_settings(graph_url=f"bolt://127.0.0.1:{free_port()}"))
    with pytest.raises(ConfigError):
        app.redis.client()
    with pytest.raises(ConfigError):  # found when the engine is built, not on the first turn
        bootstrap.build(app.settings, store=app.store, understander=_Fake(), linker=None).engine.get()


class _Fake:
    threshold = 0.5

    def understand(self, text: str):  # pragma: no cover - never called here
        raise AssertionError(text)


def test_lazy_builds_once_and_retries_after_a_failure():
    calls: list[int] = []

    def build() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first load fails")
        return len(calls)

    lazy = bootstrap.Lazy(build)
    with pytest.raises(RuntimeError):
        lazy.get()
    assert not lazy.built and lazy.if_built() is None
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(lazy.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2] * 8 and len(calls) == 2 and lazy.built


def test_fakes_swap_in_through_build():
    fake = _Fake()
    app = bootstrap.build(_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"), understander=fake,
                          linker=None, examples=None, threshold=0.3)
    engine = app.engine.get()
    assert engine.understander is fake and engine.linker is None and engine.examples is None
    assert engine.threshold == 0.3 and engine.sessions is app.sessions and engine.retriever is app.retriever
    assert app.engine.get() is engine
    app.close()
