"""Shop examples (nlu/example_store.py, kg/queries/shop_examples.py): labelled customer messages
that change understanding without retraining. Real embedded FalkorDB, the committed model in
nlu/artifacts (two separately loaded copies play two workers), the Flask app and the CLI; no
mocks. Nothing here depends on timing: a worker that should pick a change up is either the one
that made it (it refreshes at once) or one with SHOP_EXAMPLES_REFRESH_S=0 / `refresh(force=True)`.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import tests.api_support as support
from api.app import create_app
from api.services import Services
from common.errors import ImportError_
from common.settings import REPO_ROOT, Settings
from kg.backends.falkordb import FalkorDBStore
from kg.schema import ensure_schema
from nlu.example_store import (
    MAX_TEXT_CHARS,
    ExampleRow,
    ExampleStore,
    ExampleSync,
    example_id,
    normalise,
    read_examples_file,
    validate_rows,
)
from nlu.understand import Understander
from tests.api_support import api_settings, drop_api, error_shape

api = support.api

ARTIFACTS = REPO_ROOT / "nlu" / "artifacts"

# Odd phrasings the committed model misreads, each with the right intent and three paraphrases a
# catalog manager would add. The tests use the first one the model really misreads (a retrained
# model may have learnt some); that at least one is misread is asserted, so the test cannot pass
# vacuously.
MISREAD = [
    ("the magic phrase to open my shop profile escapes me", "recover_password",
     ["i forgot the magic phrase that opens my shop profile",
      "the magic words for my shop profile slipped my mind",
      "what was the magic phrase to get into my shop profile again"]),
    ("my secret word for getting in has gone out of my head", "recover_password",
     ["my secret word to get in has slipped my mind",
      "i can't recall the secret word i use for getting in",
      "the secret word for logging in went out of my head"]),
    ("scrap what i bought yesterday", "cancel_order",
     ["scrap the things i bought today",
      "please scrap my purchase from last week",
      "scrap everything i bought this morning"]),
]
# Held-out phrasings (tests/test_nlu_model.py) that examples about something else must not move.
UNRELATED = [("can I pay with a credit card", "check_payment_methods"),
             ("whats the price of the Aurora X2?", "product_price"),
             ("wheres my package 10452", "track_order"),
             ("hi, anyone there?", "greeting")]


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nlu_settings() -> Settings:
    return Settings(_env_file=None, nlu_model_dir=ARTIFACTS)


@pytest.fixture(scope="module")
def worker_a(nlu_settings) -> Understander:
    return Understander.load(nlu_settings)


@pytest.fixture(scope="module")
def worker_b(nlu_settings) -> Understander:
    """A second, separately loaded model: another worker process in production."""
    return Understander.load(nlu_settings)


@pytest.fixture(scope="module")
def misread(worker_a) -> tuple[str, str, list[str]]:
    worker_a.examples.replace(_empty(), [])
    for message, intent, paraphrases in MISREAD:
        if worker_a.understand(message).intent.name != intent:
            return message, intent, paraphrases
    raise AssertionError("the model reads every MISREAD message right: add a phrasing it gets wrong")


def _empty():
    import torch

    return torch.zeros(0, 0)


def _second_store(settings: Settings) -> FalkorDBStore:
    """Another connection to the same graph, as another worker has."""
    return FalkorDBStore.from_settings(settings)


def _intent(u: Understander, text: str) -> str:
    return u.understand(text).intent.name


# -- reading files ------------------------------------------------------------------------------------
BAD_CSV = ("\ufefftext,intent\r\n"
           "where is my parcel,track_order\r\n"        # 2 good
           "hello there,grreting\r\n"                  # 3 unknown intent
           ",track_order\r\n"                          # 4 empty text
           "Where is my parcel?,track_order\r\n"       # 5 duplicate of 2 (same normalised text)
           "send it back,get_refund\r\n"               # 6 contradiction with 7
           "Send it back!,check_refund_policy\r\n"     # 7
           + "a" * (MAX_TEXT_CHARS + 1) + ",greeting\r\n")  # 8 too long


def test_a_file_is_read_row_by_row_with_reasons():
    parsed = read_examples_file(BAD_CSV.encode("utf-8"), "examples.csv")
    assert [(r.text, r.intent, r.line) for r in parsed.rows] == [("where is my parcel", "track_order", 2)]
    by_line = {e.line: e for e in parsed.errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8]
    assert by_line[3].kind == "invalid" and "unknown intent 'grreting'" in by_line[3].reason
    assert "did you mean 'greeting'" in by_line[3].reason
    assert by_line[4].reason == "empty text"
    assert by_line[5].kind == "duplicate" and "examples.csv:2" in by_line[5].reason
    assert by_line[6].kind == by_line[7].kind == "contradiction"
    assert (by_line[6].other_intent, by_line[6].other_line) == ("check_refund_policy", 7)
    assert (by_line[7].other_intent, by_line[7].other_line) == ("get_refund", 6)
    assert "too long" in by_line[8].reason
    assert all(e.file == "examples.csv" for e in parsed.errors)
    assert by_line[3].to_dict()["field"] == "examples.csv:3"


def test_json_lines_and_unreadable_files():
    data = (b'{"text": "Cancel it please", "intent": "cancel_order"}\n'
            b'["not", "an", "object"]\n'
            b'{"text": 42, "intent": "greeting"}\n'
            b'{"text": "hi", "intent": "Greeting "}\n')
    parsed = read_examples_file(data, "shop.jsonl")
    assert [(r.text, r.intent, r.line) for r in parsed.rows] == [("Cancel it please", "cancel_order", 1),
                                                                 ("hi", "greeting", 4)]
    assert [(e.line, e.kind) for e in parsed.errors] == [(2, "unreadable"), (3, "invalid")]
    with pytest.raises(ImportError_, match="text and intent"):
        read_examples_file(b"message,label\nhi,greeting\n", "x.csv")
    with pytest.raises(ImportError_, match="UTF-16"):
        read_examples_file("text,intent\nhi,greeting\n".encode("utf-16"), "x.csv")
    with pytest.raises(ImportError_, match=".csv or .jsonl"):
        read_examples_file(b"text,intent\n", "x.xlsx")


def test_normal_form_and_ids():
    assert normalise("  Where's   MY parcel?! ") == "wheres my parcel"
    assert example_id("Where's my parcel?") == example_id("wheres my  PARCEL") and len(example_id("x")) == 12
    good, errors = validate_rows([ExampleRow("?!", "greeting", index=0), ExampleRow("hi", None, index=1),
                                  ExampleRow("ok\x07", "affirm", index=2)])
    assert good == [] and [e.where for e in errors] == ["examples[0]", "examples[1]", "examples[2]"]


# -- the store ----------------------------------------------------------------------------------------
def test_store_adds_lists_removes_and_versions(store):
    ex = ExampleStore(store)
    assert ex.version() == 0 and ex.list() == [] and ex.stamp() is None
    report = ex.add([{"text": "where is my parcel", "intent": "track_order"},
                     {"text": "send it back", "intent": "get_refund"}], "k1")
    assert [a["text"] for a in report.added] == ["where is my parcel", "send it back"]
    assert report.written and report.version == 1 and not report.problems
    listed = ex.list()
    assert [(e.text, e.intent, e.added_by) for e in listed] == [("where is my parcel", "track_order", "k1"),
                                                               ("send it back", "get_refund", "k1")]
    assert listed[0].id == example_id("where is my parcel") and listed[0].added_at.endswith("Z")
    # the same again (another spelling of the same text): unchanged, no new version
    again = ex.add([{"text": "Where is my parcel?", "intent": "track_order"}], "k2")
    assert (len(again.added), len(again.unchanged), again.version, again.written) == (0, 1, 1, False)
    # the stored text with another intent: a contradiction naming the stored intent
    clash = ex.add([{"text": "SEND it back", "intent": "check_refund_policy"},
                    {"text": "new one here", "intent": "greeting"}], "k2")
    assert [c.other_intent for c in clash.contradictions] == ["get_refund"]
    assert clash.contradictions[0].other_id == example_id("send it back")
    assert [a["text"] for a in clash.added] == ["new one here"] and clash.version == 2
    # strict: one bad row and nothing is written
    strict = ex.add([{"text": "good row", "intent": "thanks"}, {"text": "bad row", "intent": "nope"}], "k3",
                    strict=True)
    assert strict.errors and not strict.added and not strict.written and ex.version() == 2
    assert len(ex.list()) == 3
    stamp = ex.stamp()
    assert ex.remove([listed[1].id, "0123456789ab", "not an id"]) == 1
    assert ex.version() == 3 and ex.stamp() != stamp
    assert ex.remove(["0123456789ab"]) == 0 and ex.version() == 3
    assert [e.text for e in ex.list()] == ["where is my parcel", "new one here"]


def test_the_store_caps_how_many_examples_a_shop_has(store):
    ex = ExampleStore(store, max_examples=2)
    report = ex.add([{"text": f"message number {w}", "intent": "greeting"} for w in ("one", "two", "three")], "k")
    assert len(report.added) == 2 and [e.index for e in report.errors] == [2]
    assert "most examples allowed" in report.errors[0].reason


# -- understanding follows the graph ------------------------------------------------------------------
def test_examples_fix_a_misreading_in_every_worker_and_removal_restores_it(
        settings, store, worker_a, worker_b, misread):
    message, intent, paraphrases = misread
    other_store = _second_store(settings)
    try:
        sync_a = ExampleSync(store, worker_a, refresh_s=3600)
        sync_b = ExampleSync(other_store, worker_b, refresh_s=3600)
        sync_a.refresh(force=True)
        sync_b.refresh(force=True)
        before = worker_a.understand(message)
        assert before.intent.name != intent
        assert worker_b.understand(message).intent.name == before.intent.name
        unrelated_before = [_intent(worker_a, t) for t, _ in UNRELATED]
        assert unrelated_before == [i for _, i in UNRELATED]

        report = ExampleStore(store).add([{"text": p, "intent": intent} for p in paraphrases], "test")
        assert len(report.added) == 3
        assert sync_a.refresh(force=True) is True
        after = worker_a.understand(message)
        assert after.intent.name == intent, after.ranking[:3]
        assert [_intent(worker_a, t) for t, _ in UNRELATED] == unrelated_before

        # the other worker, with its own model and connection, once it refreshes
        assert sync_b.refresh(force=True) is True
        assert _intent(worker_b, message) == intent
        assert sync_b.refresh(force=True) is False  # nothing changed since

        removed = ExampleStore(other_store).remove([a["id"] for a in report.added])
        assert removed == 3
        assert sync_a.refresh(force=True) and sync_b.refresh(force=True)
        for w in (worker_a, worker_b):
            restored = w.understand(message)
            assert restored.intent.name == before.intent.name
            assert restored.intent.confidence == pytest.approx(before.intent.confidence, abs=1e-5)
        assert len(worker_a.examples) == len(worker_b.examples) == 0
    finally:
        other_store.close()
        for w in (worker_a, worker_b):
            w.examples.replace(_empty(), [])


def test_examples_survive_a_restart(make_server, worker_b, misread):
    message, intent, paraphrases = misread
    server = make_server(appendfsync="always")
    settings = Settings(_env_file=None, data_dir=server.data_dir, graph_name="shop_examples",
                        falkordb_appendfsync="always")
    first = FalkorDBStore.from_settings(settings)
    ensure_schema(first)
    ExampleStore(first).add([{"text": p, "intent": intent} for p in paraphrases], "before-restart")
    first.close()
    server.stop()
    assert server.current() is None

    worker_b.examples.replace(_empty(), [])
    assert _intent(worker_b, message) != intent
    again = FalkorDBStore.from_settings(settings)  # starts the server again from its data directory
    try:
        store = ExampleStore(again)
        assert [(e.text, e.added_by) for e in store.list()] == [(p, "before-restart") for p in paraphrases]
        sync = ExampleSync(store, worker_b, refresh_s=3600)
        assert sync.refresh() is True
        assert _intent(worker_b, message) == intent
    finally:
        worker_b.examples.replace(_empty(), [])
        again.close()


def test_refresh_is_rate_limited_thread_safe_and_never_raises(store, worker_a, falkordb_server):
    ex = ExampleStore(store)
    sync = ExampleSync(ex, worker_a, refresh_s=3600)
    assert sync.refresh() is True  # the first check always loads
    ex.add([{"text": "hello from the shop", "intent": "greeting"}], "t")
    assert sync.refresh() is False  # checked moments ago: not due (a forced refresh is)
    assert len(worker_a.examples) == 0
    busy = ExampleSync(ex, worker_a, refresh_s=0)
    failures: list[BaseException] = []

    def turn() -> None:
        try:
            for _ in range(5):
                busy.refresh()
                worker_a.understand("hello from the shop")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=turn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(worker_a.examples) == 1
    # a graph that cannot be reached: logged, the loaded examples kept, nothing raised
    gone = FalkorDBStore.from_settings(Settings(_env_file=None, graph_url="falkordb://127.0.0.1:1",
                                                graph_retries=0, graph_name="nowhere"))
    try:
        broken = ExampleSync(gone, worker_a, refresh_s=0)
        assert broken.refresh(force=True) is False
        assert broken.last_error and len(worker_a.examples) == 1
    finally:
        gone.close()
        worker_a.examples.replace(_empty(), [])


# -- the API ------------------------------------------------------------------------------------------
def _post_file(api, name: str, content: bytes, query: str = "", headers=None):
    return api.client.post(f"/api/v1/catalog/examples{query}", data={"files": [(io.BytesIO(content), name)]},
                           content_type="multipart/form-data", headers=headers or api.h())


def test_api_adds_lists_and_removes_examples_recording_the_key(api):
    key = api.key("catalog")
    key_id = key.split("_")[1]
    r = api.client.post("/api/v1/catalog/examples", headers=api.h(key), json={"examples": [
        {"text": "where is my parcel", "intent": "track_order"}, {"text": "send it back", "intent": "get_refund"}]})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert [a["text"] for a in body["added"]] == ["where is my parcel", "send it back"] and body["version"] == 1
    listed = api.client.get("/api/v1/catalog/examples", headers=api.h(key)).get_json()
    assert listed["version"] == 1 and listed["count"] == 2
    assert {e["added_by"] for e in listed["examples"]} == {key_id}
    # a file, multipart; one good row, one unchanged, one refused: 200 with the per-row report
    r = _post_file(api, "more.csv", b"text,intent\nwhere is my parcel,track_order\nbye for now,goodbye\nx,nope\n")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert [a["text"] for a in body["added"]] == ["bye for now"] and len(body["unchanged"]) == 1
    assert [(e["field"], e["kind"]) for e in body["errors"]] == [("more.csv:4", "invalid")]
    assert api.client.get("/api/v1/catalog/examples", headers=api.h()).get_json()["count"] == 3
    # remove
    eid = example_id("send it back")
    r = api.client.delete(f"/api/v1/catalog/examples/{eid}", headers=api.h(key))
    assert r.status_code == 200 and r.get_json() == {"id": eid, "removed": True, "version": 3}
    error_shape(api.client.delete(f"/api/v1/catalog/examples/{eid}", headers=api.h(key)), 404)
    error_shape(api.client.delete("/api/v1/catalog/examples/NOT-AN-ID", headers=api.h(key)), 404)
    assert [e["text"] for e in api.client.get("/api/v1/catalog/examples", headers=api.h()).get_json()["examples"]] \
        == ["where is my parcel", "bye for now"]
    # roles
    chat = api.key("chat")
    error_shape(api.client.get("/api/v1/catalog/examples", headers=api.h(chat)), 403)
    error_shape(api.client.post("/api/v1/catalog/examples", headers=api.h(chat), json={"examples": []}), 403)
    error_shape(api.client.get("/api/v1/catalog/examples", headers=api.h(None)), 401)


def test_api_bad_files_get_per_row_errors_and_change_nothing(api):
    ok = api.client.post("/api/v1/catalog/examples", headers=api.h(),
                         json={"examples": [{"text": "send it back", "intent": "get_refund"}]})
    assert ok.status_code == 200
    before = api.client.get("/api/v1/catalog/examples", headers=api.h()).get_json()

    # strict: every kind of problem at once, and the one good row is not written either
    r = _post_file(api, "examples.csv", BAD_CSV.encode("utf-8"), "?strict=true")
    err = error_shape(r, 422, "validation_error")
    by_field = {d["field"]: d for d in err["details"]["rows"]}
    assert sorted(by_field) == [f"examples.csv:{n}" for n in (3, 4, 5, 6, 7, 8)]
    assert by_field["examples.csv:3"]["kind"] == "invalid" and "unknown intent" in by_field["examples.csv:3"]["message"]
    assert by_field["examples.csv:4"]["message"] == "empty text"
    assert by_field["examples.csv:5"]["kind"] == "duplicate"
    assert by_field["examples.csv:6"]["other_intent"] == "check_refund_policy"
    assert by_field["examples.csv:7"]["other_intent"] == "get_refund"

    # not strict, but nothing good in it: a 422; a text stored with another intent is a contradiction
    r = _post_file(api, "clash.jsonl", b'{"text": "Send it back!", "intent": "check_refund_policy"}\n'
                                       b'{"text": "", "intent": "greeting"}\n')
    err = error_shape(r, 422)
    assert [(d["field"], d["kind"], d.get("other_intent")) for d in err["details"]["rows"]] == [
        ("clash.jsonl:2", "invalid", None), ("clash.jsonl:1", "contradiction", "get_refund")]
    r = api.client.post("/api/v1/catalog/examples", headers=api.h(), json={"examples": [
        {"text": "hi", "intent": "greeting"}, {"text": "HI!", "intent": "goodbye"}]})
    err = error_shape(r, 422)
    assert [(d["field"], d["other_intent"]) for d in err["details"]["rows"]] == [("examples[0]", "goodbye"),
                                                                         ("examples[1]", "greeting")]
    # unreadable uploads and bodies
    error_shape(_post_file(api, "examples.csv", "text,intent\nhi,greeting\n".encode("utf-16")), 422)
    error_shape(_post_file(api, "examples.txt", b"text,intent\nhi,greeting\n"), 422)
    error_shape(_post_file(api, "examples.csv", b"words,label\nhi,greeting\n"), 422)
    error_shape(_post_file(api, "examples.csv", b"text,intent\n"), 422)
    error_shape(api.client.post("/api/v1/catalog/examples", headers=api.h(), json={"examples": []}), 422)
    error_shape(api.client.post("/api/v1/catalog/examples", headers=api.h(),
                                json={"examples": [{"text": "hi", "intent": 5}]}), 422)
    error_shape(api.client.post("/api/v1/catalog/examples", headers=api.h(), data="text,intent",
                                content_type="text/csv"), 415)
    assert api.client.get("/api/v1/catalog/examples", headers=api.h()).get_json() == before


@pytest.fixture
def two_workers(falkordb_server, worker_a, worker_b) -> Iterator[tuple]:
    """Two apps on one graph, each with its own engine and model: the worker that serves a write
    (refresh interval one hour: only its own forced refresh can explain a change) and another one
    that checks before every message (SHOP_EXAMPLES_REFRESH_S=0)."""
    from common import bootstrap

    made = []
    graph = None
    for u, refresh_s in ((worker_a, 3600.0), (worker_b, 0.0)):
        over = {"shop_examples_refresh_s": refresh_s}
        if graph is not None:
            over["graph_name"] = graph
        settings = api_settings(falkordb_server.data_dir, **over)
        graph = settings.graph_name
        store = FalkorDBStore.from_settings(settings)
        ensure_schema(store)
        services = Services(bootstrap.build(settings, store=store, understander=u))
        app = create_app(settings, services=services)
        made.append(support.Api(settings, store, services, app, app.test_client()))
    for a in made:
        a.services.engine()
    yield tuple(made)
    for u in (worker_a, worker_b):
        u.examples.replace(_empty(), [])
    drop_api(made[0])
    made[1].services.close()


def _chat_intent(api, message: str) -> str:
    """The intent a new conversation's first turn reports, through the worker's dialogue engine."""
    return api.services.engine().handle(None, message, None, caller="dev").intent.name


def test_chat_reads_the_message_right_after_the_examples_are_added(two_workers, misread):
    writer, other = two_workers
    message, intent, paraphrases = misread
    assert type(writer.services.engine().examples) is ExampleSync
    first_a, first_b = _chat_intent(writer, message), _chat_intent(other, message)
    assert first_a != intent and first_b != intent

    r = writer.client.post("/api/v1/catalog/examples", headers=writer.h(),
                           json={"examples": [{"text": p, "intent": intent} for p in paraphrases]})
    assert r.status_code == 200 and len(r.get_json()["added"]) == 3
    assert _chat_intent(writer, message) == intent  # the worker that served the write: at once
    assert _chat_intent(other, message) == intent  # another worker: at its next check

    for a in r.get_json()["added"]:
        assert writer.client.delete(f"/api/v1/catalog/examples/{a['id']}", headers=writer.h()).status_code == 200
    assert _chat_intent(writer, message) == first_a
    assert _chat_intent(other, message) == first_b


# -- the CLI ------------------------------------------------------------------------------------------
@pytest.fixture
def cli(settings, store):
    from nlu.cli import nlu

    env = {"GRAPH_URL": settings.graph_url, "DATA_DIR": str(settings.data_dir), "GRAPH_NAME": settings.graph_name,
           "FALKORDB_APPENDFSYNC": "always"}

    def _invoke(*args: str):
        return CliRunner().invoke(nlu, ["examples", *args], env=env, catch_exceptions=False)

    return _invoke


def test_cli_adds_lists_and_removes(cli, store, tmp_path: Path):
    good = tmp_path / "examples.csv"
    good.write_text("text,intent\nwhere is my parcel,track_order\nsend it back,get_refund\n", encoding="utf-8")
    result = cli("add", str(good))
    assert result.exit_code == 0, result.output
    assert "examples.csv:2 added" in result.output and "2 added, 0 unchanged" in result.output
    listed = cli("list", "--json")
    assert listed.exit_code == 0
    data = json.loads(listed.output)
    assert data["version"] == 1 and [(e["text"], e["added_by"]) for e in data["examples"]] == [
        ("where is my parcel", "cli"), ("send it back", "cli")]
    plain = cli("list")
    assert example_id("send it back") in plain.output and "2 example(s); version 1" in plain.output

    removed = cli("remove", example_id("send it back"), "0123456789ab")
    assert removed.exit_code == 1  # one id was unknown; the known one is gone all the same
    assert "no such example: 0123456789ab" in removed.output and "removed 1 example(s)" in removed.output
    assert [e.text for e in ExampleStore(store).list()] == ["where is my parcel"]


def test_cli_bad_files_are_reported_per_row_and_change_nothing(cli, store, tmp_path: Path):
    ex = ExampleStore(store)
    ex.add([{"text": "send it back", "intent": "get_refund"}], "setup")
    bad = tmp_path / "examples.csv"
    bad.write_bytes(BAD_CSV.encode("utf-8"))
    result = cli("add", str(bad), "--strict")
    assert result.exit_code == 1
    for line in ("examples.csv:3 [invalid]: unknown intent", "examples.csv:4 [invalid]: empty text",
                 "examples.csv:5 [duplicate]", "examples.csv:6 [contradiction]", "examples.csv:7 [contradiction]",
                 "examples.csv:8 [invalid]: text too long", "--strict: nothing was written"):
        assert line in result.output, result.output
    clash = tmp_path / "clash.jsonl"
    clash.write_text('{"text": "send it back!", "intent": "check_refund_policy"}\n', encoding="utf-8")
    result = cli("add", str(clash))
    assert result.exit_code == 1 and "clash.jsonl:1 [contradiction]" in result.output
    assert "'get_refund'" in result.output and "nothing was added" in result.output
    unreadable = tmp_path / "examples.jsonl"
    unreadable.write_bytes("text,intent\n".encode("utf-16"))
    assert cli("add", str(unreadable)).exit_code == 1
    empty = tmp_path / "empty.csv"
    empty.write_text("text,intent\n", encoding="utf-8")
    result = cli("add", str(empty))
    assert result.exit_code == 1 and "holds no examples" in result.output
    assert [(e.text, e.intent) for e in ex.list()] == [("send it back", "get_refund")] and ex.version() == 1
