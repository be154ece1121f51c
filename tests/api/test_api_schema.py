"""The OpenAPI document matches the server: a bounded schemathesis run over
every operation finds no 5xx and no response outside its documented schema,
status codes or content type."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import dossier_event

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _document() -> dict:
    """The served document, built by a database-less app (the document needs none)."""
    from survey_app import create_app
    from survey_app.api.openapi import document
    from tests.helpers import TEST_CONFIG

    app = create_app(dict(TEST_CONFIG, SQLALCHEMY_DATABASE_URI="sqlite://"))
    with app.app_context():
        return document()


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture
def seeded_api(api_world, api):
    # Some data for the reads to find: a returned dossier of P-A, offered.
    api("p").events(dossier_event(code="HS-1", unit="P-A"),
                    dossier_event(code="HS-1", unit="P-A", event="tra_ket_qua"))
    api("p").get("/dossiers/HS-1/link")
    return api_world


def _headers(world) -> dict:
    # identity: the WSGI transport reads the body as sent, and JSON answers may be compressed (Flask-Compress)
    return {"Authorization": f"Bearer {world['keys']['p']}", "Accept-Encoding": "identity"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_matches_its_openapi_document(case, seeded_api):
    case.call_and_validate(app=seeded_api["app"], checks=CHECKS, headers=_headers(seeded_api))


def test_the_document_names_every_api_route(api_world):
    doc = api_world["http"].get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    rules = {r.rule.replace("<code>", "{MaHoSo}") for r in api_world["app"].url_map.iter_rules()
             if r.rule.startswith("/api/v1/")}
    assert rules == set(doc["paths"])


def test_successful_answers_match_the_document(seeded_api):
    """The fuzzer mostly meets refusals; these calls succeed, and their answers are checked the same way."""
    headers = _headers(seeded_api)
    cases = [
        schema["/api/v1/dossier-events"]["POST"].Case(
            body={"events": [dossier_event(code="HS-2", unit="P-A"), dossier_event(code="HS-2", unit="P-A"),
                             dossier_event(code="HS-3", unit="NOPE")]}, media_type="application/json"),
        schema["/api/v1/dossiers/{MaHoSo}/link"]["GET"].Case(path_parameters={"MaHoSo": "HS-1"}),
        schema["/api/v1/volumes"]["POST"].Case(
            body={"rows": [{"MaDonVi": "P-B", "TuNgay": "2025-01-01", "DenNgay": "2025-03-31", "SoHoSo": 3}]},
            media_type="application/json"),
        schema["/api/v1/results"]["GET"].Case(query={"period": "2025"}),
        schema["/api/v1/results"]["GET"].Case(query={"period": "2025", "unit": "P-A"}),
        schema["/api/v1/openapi.json"]["GET"].Case(),
    ]
    for case in cases:
        response = case.call_and_validate(app=seeded_api["app"], checks=CHECKS, headers=headers)
        assert response.status_code == 200, (case.path, response.text[:300])
