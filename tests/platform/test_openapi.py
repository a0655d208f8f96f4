"""Schemathesis against the app's OpenAPI schema, on SQLite and PostgreSQL: no 5xx, every response as documented.

Every ``/api/v1`` operation gets generated requests, valid ones (positive) and invalid ones
(negative), two ways: as generated, and for the real project by a signed-in person (so the
requests get past "unknown project" and "sign in first"). Every response must be no server
error, with a documented status, content type, headers and body schema; a request that breaks
the schema must be refused with a 4xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from c2m.platform import BenefitSpec, Settings, create_app

PROJECT = "swap-city-ev"
EXAMPLES = 6  # per operation, mode and variant: bounded, both databases together run in well under a minute
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:
    settings = Settings(
        database_url=db_url,
        slot_days_ahead=2,
        survey_versions=2,
        survey_tasks=4,
        survey_holdouts=1,
        benefits=[BenefitSpec(code="charging-coupon", name="coupon", quota=3)],
    )
    app = create_app(settings)
    yield app
    app.state.platform.engine.dispose()


def sign_in(app: FastAPI, contact: str) -> str:
    """A person's session token, through the one-time-code API and the dev outbox."""
    with TestClient(app) as http:
        assert http.post("/api/v1/identity/code", json={"contact": contact}).status_code == 202
        code = app.state.platform.dev_outbox(contact)[0]
        verified = http.post("/api/v1/identity/verify", json={"contact": contact, "code": code})
        assert verified.status_code == 200, verified.text
        return str(verified.json()["token"])


def fuzz(operation: APIOperation, mode: GenerationMode, **fixed: Any) -> list[str]:
    """Run ``EXAMPLES`` generated requests of ``operation``; the failures found, as text."""
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        case.call_and_validate(checks=checks)

    try:
        run()
    except Unsatisfiable:  # nothing to vary in this mode (e.g. a negative request of an operation without input)
        pass
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis: a group of the distinct failures
        found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
        details = "\n".join(f"  {type(e).__name__}: {e}" for e in found)
        failures.append(f"{operation.label} [{mode.value}{', signed in' if fixed else ''}]:\n{details}")
    return failures


def test_every_api_operation_answers_as_its_schema_says(app: FastAPI) -> None:
    token = sign_in(app, "13900000000")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/api/v1/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    for operation in operations:
        signed_in: dict[str, Any] = {"headers": {"Authorization": f"Bearer {token}"}}
        if "{project}" in operation.path:
            signed_in["path_parameters"] = {"project": PROJECT}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += fuzz(operation, mode)
            failures += fuzz(operation, mode, **signed_in)
    assert not failures, f"{len(failures)} failing operation runs:\n\n" + "\n\n".join(failures)
