"""Schemathesis against the app's own OpenAPI document: every operation, as
the PLS bot, with a bounded number of generated examples. No answer may be a
5xx, and every answer must match the documented schema for its status."""

import functools

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from reconciliation.api.auth import issue_token
from reconciliation.services.requests import create_data_request

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def api_schema(seeded, settings):
    # Claims must never reach outside this machine while fuzzing: no host is allowed.
    settings.CLAIM_ALLOWED_HOSTS = ["claims.invalid"]
    settings.CLAIM_ALLOW_PRIVATE = False
    # The real WSGI handler closes the connection after each request; inside a
    # test transaction that would close the test database (Django's own test
    # client disconnects the same receiver).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def pls_token(seeded, pls):
    # One real request, so the id-taking operations also see an existing row.
    create_data_request(requested_by=pls)
    return issue_token(pls)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(case, pls_token):
    case.call_and_validate(
        headers={"Authorization": f"Token {pls_token}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


OVER_LONG = "x" * 6000  # beyond every text limit of the API (the longest is 5,000)


@functools.cache
def _documented_names(method: str, path: str) -> frozenset[str]:
    """The parameters and body properties this operation documents. The
    generator also sends undocumented keys, which the API rightly ignores —
    even when another operation has a field of that name (a stray
    `required=…` on GET /data-requests is not a text the API takes). Built
    once per operation: building the document for every case cost minutes."""
    from reconciliation.api import api

    document = api.get_openapi_schema()
    components = document.get("components", {}).get("schemas", {})
    operation = document["paths"][path][method.lower()]
    names = {p["name"] for p in operation.get("parameters", [])}
    for media in operation.get("requestBody", {}).get("content", {}).values():
        body = media.get("schema", {})
        if "$ref" in body:
            body = components[body["$ref"].rsplit("/", 1)[-1]]
        names.update(body.get("properties", {}))
    return frozenset(names)


def _poison(case, value_of) -> str | None:
    """Replace the first documented text field of the body (else of the
    query) with value_of(original); its name, or None when the operation got
    no text."""
    documented = _documented_names(case.operation.method, case.operation.full_path)
    for container in (case.body, case.query):
        if isinstance(container, dict):
            for key, value in container.items():
                if key in documented and isinstance(value, str):
                    container[key] = value_of(value)
                    return key
    return None


def _call_poisoned(case, token, poison) -> None:
    poisoned = _poison(case, poison)
    response = case.call(headers={"Authorization": f"Token {token}"})
    assert response.status_code < 500, response.text[:300]
    if poisoned:
        assert 400 <= response.status_code < 500, (
            case.operation.label,
            poisoned,
            {k: str(v)[:40] for k, v in (case.query or {}).items()},
            response.status_code,
        )


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_nul_in_any_text_is_a_4xx(case, pls_token):
    _call_poisoned(case, pls_token, lambda value: value[:10] + "\x00" + value[10:])


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_over_long_text_is_a_4xx(case, pls_token):
    _call_poisoned(case, pls_token, lambda value: OVER_LONG)
