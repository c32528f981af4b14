"""Schemathesis against the shop's own /openapi.json, in-process: each operation, with valid
(positive) and invalid (negative) requests, signed in as user 1, never answers 5xx (but 503 with
Retry-After, a documented answer) and answers only what the schema documents: status code,
content type and body.

Schemathesis's ASGI client runs the app's lifespan (startup, then shutdown) on its own event
loop thread: it starts it for the first call, and its pytest plugin ends it after each test, so
each test starts the shop again on the data directory the module seeded once. The cart's
per-user rate limit is lifted so the fuzzer reaches the handlers (the 429 is test_bad_input's).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shop.config import load_settings
from shop.entrypoints.app import create_app

pytestmark = pytest.mark.slow  # some 20 s, most of it the shop stopping after each test

MAX_EXAMPLES = 25
"""Requests per operation and mode."""
SEEDED_PRODUCTS = 500
"""Product ids 1..500 exist in the seeded catalogue."""


def _labels() -> list[str]:
    with tempfile.TemporaryDirectory() as unused:  # the schema only: no lifespan, no files
        spec = create_app(load_settings(data_dir=unused)).openapi()
    return [f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops]


OPERATIONS = _labels()


def no_server_error(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """No 5xx, but a 503 that says when to retry (Retry-After): overload is a documented answer."""
    if response.status_code == 503 and response.headers.get("retry-after"):
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Api:
    schema: schemathesis.BaseSchema
    headers: dict[str, str]
    admin_token: str


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("shop")
    app = create_app(load_settings(data_dir=data_dir, cart_rate="100000/minute"))
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the lifespan
        with asgi.get_client(app) as client:
            signed_in = client.post(
                "/auth/token", data={"username": "user1@shop.test", "password": "demo"}
            )
        assert signed_in.status_code == 200, signed_in.text
        headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        yield Api(schema, headers, app.state.admin_token)
    finally:
        asgi.shutdown_lifespans()


def strategy(api: Api, label: str, mode: GenerationMode) -> st.SearchStrategy[Case[Any]]:
    """Cases of ``label``. Positive ones are half free, half aimed where answers are not all
    403 or 404: user 1's own paths, seeded products and the admin token."""
    operation = api.schema.find_operation_by_label(label)
    assert operation is not None, label
    free = operation.as_strategy(generation_mode=mode)
    if mode is not GenerationMode.POSITIVE:
        return free
    path_names = {p.name for p in operation.path_parameters}
    header_names = {p.name.lower() for p in operation.headers}
    products = st.integers(1, SEEDED_PRODUCTS) if "product_id" in path_names else st.none()

    def aimed(product_id: int | None) -> st.SearchStrategy[Case[Any]]:
        path: dict[str, Any] = {"user_id": 1} if "user_id" in path_names else {}
        if product_id is not None:
            path["product_id"] = product_id
        headers = {"x-admin-token": api.admin_token} if "x-admin-token" in header_names else None
        return operation.as_strategy(generation_mode=mode, path_parameters=path, headers=headers)

    return st.one_of(free, products.flatmap(aimed))


def has_inputs(api: Api, label: str) -> bool:
    operation = api.schema.find_operation_by_label(label)
    assert operation is not None, label
    return bool(list(operation.iter_parameters()) or operation.body)


@pytest.mark.parametrize("label", OPERATIONS)
def test_the_shop_answers_as_documented(api: Api, label: str) -> None:
    # One test an operation, both modes in it: schemathesis's pytest plugin ends the app's
    # lifespan after every test, and the shop takes most of a second to stop.
    modes = [GenerationMode.POSITIVE]
    if has_inputs(api, label):  # else there is nothing to make invalid
        modes.append(GenerationMode.NEGATIVE)
    for mode in modes:

        @hypothesis.given(case=strategy(api, label, mode))
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,  # no timed assertions: pytest-timeout guards against a hang
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.filter_too_much,
                HealthCheck.data_too_large,
            ],
        )
        def run(case: Case[Any]) -> None:
            response = case.call(headers=api.headers)
            case.validate_response(response, checks=CHECKS)

        run()
