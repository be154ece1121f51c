"""The citizen path never imports the statistics stack: creating the app, then GET and POST of
`/c/<token>` (and the thank-you page), in a fresh interpreter, leave pandas, numpy, scipy,
statsmodels and matplotlib unimported.  A worker that only serves citizens starts fast and small."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "numpy", "scipy", "statsmodels", "matplotlib")

SCRIPT = r"""
import json, sys

HEAVY = {heavy!r}


def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)


from survey_app import create_app

app = create_app({{"TESTING": True, "SQLALCHEMY_DATABASE_URI": {url!r}, "SECRET_KEY": "citizen-path",
                  "PUBLIC_BASE_URL": "http://sipas.test", "RATELIMIT_STORAGE_URI": "memory://",
                  "PUBLIC_MIN_FILL_SECONDS": 0}},
                 instance_path={instance!r})
out = {{"create_app": loaded()}}

from survey_app.extensions import db
from tests.factories import make_place
from tests.helpers import ANSWERS, scrape

with app.app_context():
    db.create_all()
    from survey_app.services.instruments import sync_instruments
    sync_instruments(db.session)
    db.session.commit()
    place = make_place()
out["setup"] = loaded()

client = app.test_client()
page = client.get(place.url)
out["get"] = [page.status_code, loaded()]
sent = client.post(place.url, data=dict(scrape(page.get_data(as_text=True)), **ANSWERS))
out["post"] = [sent.status_code, sent.headers.get("Location", ""), loaded()]
thanks = client.get(sent.headers["Location"]) if sent.status_code in (302, 303) else None
out["thanks"] = [thanks.status_code if thanks else None, loaded()]
with app.app_context():
    from survey_app.models import Response
    out["stored"] = db.session.query(Response).count()
print("RESULT " + json.dumps(out))
"""


def test_citizen_path_leaves_the_statistics_stack_unimported(tmp_path):
    url = f"sqlite:///{tmp_path / 'citizen.sqlite3'}"
    code = SCRIPT.format(heavy=HEAVY, url=url, instance=str(tmp_path / "instance"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPAS_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    # the path really ran: the form was served, the answers stored, the thank-you page shown
    assert out["get"][0] == 200
    assert out["post"][0] in (302, 303) and "/thanks" in out["post"][1], out["post"]
    assert out["thanks"][0] == 200
    assert out["stored"] == 1
    assert out["create_app"] == [], "create_app imports the statistics stack"
    assert out["get"][1] == [], "GET /c/<token> imports the statistics stack"
    assert out["post"][2] == [], "POST /c/<token> imports the statistics stack"
    assert out["thanks"][1] == [], "the thank-you page imports the statistics stack"


def test_the_check_sees_the_stack_when_it_is_imported(tmp_path):
    """The probe itself works: importing a staff statistics module does load the stack."""
    code = ("import sys\nimport analysis.index\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert "pandas" in proc.stdout and "numpy" in proc.stdout
