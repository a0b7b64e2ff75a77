"""Generated requests against every operation in the OpenAPI document, as each role.

Whatever schemathesis sends — valid or not — the broker must never answer 5xx, must reject
invalid data with a 4xx, and must answer in the documented shape and content type.
"""

import os

import pytest
import schemathesis
import schemathesis.specs.openapi.checks  # noqa: F401  (registers the OpenAPI checks)
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS

CHOSEN = {"not_a_server_error", "response_schema_conformance", "content_type_conformance", "negative_data_rejection"}
EXAMPLES = int(os.environ.get("BROKER_FUZZ_EXAMPLES", "8"))


@pytest.mark.slow
@pytest.mark.parametrize("role", ["staff", "carrier", "startup"])
def test_no_operation_fails_whatever_it_is_sent(app, make_actor, role):
    headers = make_actor(role).headers
    checks = [f for f in CHECKS.get_all() if f.__name__ in CHOSEN]
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(headers=headers, checks=checks)

        try:
            check()
        except Exception as error:  # every operation is tried; all failures are reported together
            failures.append(f"{operation.label}: {str(error)[:800]}")
    assert not failures, "\n\n".join(failures)
