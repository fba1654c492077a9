"""Property-based fuzzing of every operation in /openapi.json against the running service: no 5xx.

schemathesis generates valid and invalid parameters and bodies from the spec we publish; each request
goes over a real socket to the service (with the emulator as Hume and an all-scopes key). Its pytest
plugin does not load under pytest 9, so the operations are driven through hypothesis directly.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok

from tests.conftest import Service

EXAMPLES = 40


# The service and the emulator run in threads of this process, and libraries there (connection-pool and
# retry jitter) draw from the global `random`; hypothesis blames whatever strategy is drawing at that moment.
@pytest.mark.slow
@pytest.mark.usefixtures("every_app_module_imported")
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_no_generated_request_yields_a_server_error(service: Service) -> None:
    """Whatever the generated path, query, headers or body, for every documented operation, the service
    answers below 500 (the webhooks' 503 needs a database outage, which does not happen here)."""
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    auth = {"Authorization": f"Bearer {service.key}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the spec has an invalid operation: {result.err()}"
        operation = result.ok()
        operations += 1
        # Valid inputs and deliberately invalid ones (wrong types, missing required parts).
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

        @given(case=strategy)
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: Case[Any]) -> None:
            response = case.call(base_url=service.url, headers=auth, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}")

        check()
    assert operations >= 15
    assert failures == []
