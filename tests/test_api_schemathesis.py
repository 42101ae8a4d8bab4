"""Property-based tests of every documented operation against the OpenAPI document (schemathesis):
no generated request, valid or invalid, may produce a 500, a status the document does not list, a
wrong media type, or a reply that does not match its schema. Bounded: a few dozen examples per
operation, positive and negative data.

Schemathesis's own pytest plugin does not run on this pytest version, so the test drives its
Python API: one Hypothesis run per operation over the operation's case strategy."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test requirement")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import tests.api_support as support  # noqa: E402
from tests.api_support import DEV_KEY, build_api, drop_api, load_sample, token  # noqa: E402

sample_store_dir = support.sample_store_dir



@schemathesis.check
def no_unexpected_server_error(ctx, response, case):
    """No 5xx but 503, and a 503 only as the documented JSON error (or the readiness report)."""
    status = response.status_code
    if status >= 500 and status != 503:
        raise AssertionError(f"server error {status}: {response.text[:300]}")
    if status == 503:
        body = response.json()
        assert "error" in body or body.get("status") == "not_ready", body
        assert response.headers.get("Retry-After") or response.headers.get("retry-after"), "503 without Retry-After"


CHECKS = [no_unexpected_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}


@pytest.fixture(scope="module")
def fuzz_api(falkordb_server, sample_store_dir):
    a = build_api(falkordb_server.data_dir, api_rate_limit_import_per_minute=0, analyst_timeout_ms=2000)
    load_sample(a, sample_store_dir)
    yield a
    drop_api(a)


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    ops = []
    for result in schema.get_all_operations():
        ops.append(result.ok())
    return ops


def _fuzz(op, mode, headers, checks, examples) -> None:
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(headers=headers, checks=checks)

    run()


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
@pytest.mark.parametrize("auth", ["key", "no_key"])
def test_no_server_errors_and_replies_match_the_document(fuzz_api, mode, auth):
    ops = _operations(fuzz_api.app)
    assert len(ops) >= 18
    headers = {"Authorization": f"Bearer {DEV_KEY}", "X-Customer-Token": token("C00001")} if auth == "key" else {}
    checks = CHECKS if auth == "key" else [no_unexpected_server_error, content_type_conformance]
    examples = EXAMPLES[mode] if auth == "key" else 5
    failures = []
    for op in ops:
        if op.path.endswith("/docs"):
            continue

        try:
            _fuzz(op, mode, headers, checks, examples)
        except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
            continue
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: one run reports every operation
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
