"""Schemathesis against the live OpenAPI schema (/api/schema/), in-process through the WSGI app with
a read-write token: every operation, with valid and with invalid input, must answer without a
server error and as the schema says (status code, content type, body); invalid input must be
refused. A bounded number of examples per operation and mode keeps it to seconds."""

import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import grant_with_usage, submit
from tests.factories import AllocationRoundFactory, StaffFactory

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))  # per operation and generation mode


@pytest.fixture
def _keep_the_test_connection():
    """The WSGI handler closes the database connection after each request (request_finished), which
    would end the test's transaction; Django's test client disconnects it the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(org, owner, pools, _keep_the_test_connection):
    allocation_round = AllocationRoundFactory(created_by=StaffFactory())
    submit(allocation_round, org, owner, 100)
    grant_with_usage(org, pools["osaka"], records=3)
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_answers_as_its_schema_says(api_schema, write_token, org, mode):
    headers = {"Authorization": f"Bearer {write_token.secret}"}
    operations = _operations(api_schema)
    assert len(operations) >= 15
    for operation in operations:
        _check_operation(operation, mode, headers, org.slug)


def _check_operation(operation, mode, headers, slug):
    strategy = operation.as_strategy(generation_mode=mode)
    if "slug" in {p.name for p in operation.path_parameters}:
        # Half the examples on the organization the token reaches, so that more than 404s are seen.
        strategy |= operation.as_strategy(generation_mode=mode, path_parameters={"slug": slug})
    # A write that is valid by the schema may still be refused by the rules (the round is not
    # open, no pool offers the class): a documented 400, so "positive data accepted" is only
    # asked of reads.
    excluded = [] if operation.method.upper() == "GET" else [positive_data_acceptance]

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    check()
