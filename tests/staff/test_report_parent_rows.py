"""The annual report when a parent unit also served people itself (a district
one-stop before 2025-07-01): its own `unit` row and its roll-up row share a code."""
import datetime as dt

from survey_app.extensions import db
from tests.factories import (
    PASSWORD,
    make_counter,
    make_response,
    make_unit,
    make_user,
    make_volume,
)
from tests.helpers import login

UTC = dt.timezone.utc


def test_report_with_a_parent_that_has_its_own_responses(sapp):
    with sapp.app_context():
        prov = make_unit("P", kind="province")
        dist = make_unit("H", kind="district", parent=prov)
        com = make_unit("H-X", kind="commune", parent=dist)
        for u in (dist, com):
            c = make_counter(u)
            make_volume(u, 500)
            for i in range(40):
                make_response(u, {"overall": 4 + i % 2, "staff": 3 + i % 3}, counter=c,
                              submitted_at=dt.datetime(2025, 3, 1, 3, tzinfo=UTC) + dt.timedelta(hours=i))
        make_user("boss", role="admin", password=PASSWORD)
        db.session.commit()
    c = sapp.test_client()
    assert login(c, "boss").status_code == 302
    r = c.get("/staff/report/2025")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    html = r.get_data(as_text=True)
    assert "H-X" in html and ">H<" in html or "H</" in html
    assert c.get("/staff/report/2025.csv").status_code == 200
    assert c.get("/staff/report/2025.xlsx").status_code == 200
