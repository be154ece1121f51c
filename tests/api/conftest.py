"""API v1 tests: an app with two provinces' units, counters and API clients."""
from __future__ import annotations

import pytest


def seed_api_units(app) -> dict:
    """Province P > communes P-A, P-B (a counter each); province Q > Q-Y (a
    counter).  Clients: `a` (P-A, all rights), `p` (P, all rights),
    `reader` (P, results only), `y` (Q-Y).  Returns their keys."""
    from survey_app.extensions import db
    from tests.factories import make_api_client, make_counter, make_unit

    with app.app_context():
        P = make_unit("P", kind="province")
        A = make_unit("P-A", parent=P)
        B = make_unit("P-B", parent=P)
        Q = make_unit("Q", kind="province")
        Y = make_unit("Q-Y", parent=Q)
        for u in (A, B, Y):
            make_counter(u, code=f"{u.code}-Q1")
        db.session.commit()
        return {"a": make_api_client(A, "client-a")[1], "p": make_api_client(P, "client-p")[1],
                "reader": make_api_client(P, "reader", rights=("results",))[1],
                "y": make_api_client(Y, "client-y")[1]}


@pytest.fixture
def api_world(make_loaded_app):
    """seed_api_units in an app with CSRF on (as in production): {"app", "http", "keys"}."""
    app = make_loaded_app(WTF_CSRF_ENABLED=True)
    return {"app": app, "http": app.test_client(), "keys": seed_api_units(app)}


class Api:
    """A test client that sends one key as a Bearer token."""

    def __init__(self, http, key):
        self.http, self.key = http, key

    def _h(self):
        return {"Authorization": f"Bearer {self.key}"}

    def post(self, path, body):
        return self.http.post("/api/v1" + path, json=body, headers=self._h())

    def get(self, path, **kw):
        return self.http.get("/api/v1" + path, headers=self._h(), **kw)

    def events(self, *events):
        return self.post("/dossier-events", {"events": list(events)})


@pytest.fixture
def api(api_world):
    """api(name) -> an Api client with that client's key."""
    return lambda name="p": Api(api_world["http"], api_world["keys"][name])
