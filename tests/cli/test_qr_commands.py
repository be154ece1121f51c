"""The `qr` commands: posters, token rotation, dossier links."""
from __future__ import annotations

from tests.helpers import open_form


def test_qr_posters_command(app, runner, tmp_path):
    from survey_app.extensions import db
    from tests.factories import make_counter, make_unit

    with app.app_context():
        prov = make_unit(code="T-01", kind="province", name_vi="Tỉnh Một")
        commune = make_unit(code="X-01", parent=prov, name_vi="UBND phường Hòa Bình")
        make_counter(commune, code="X-01-Q1", name_vi="Quầy 1 — Đất đai")
        make_counter(commune, code="X-01-Q2", name_vi="Quầy 2 — Hộ tịch")
        make_counter(commune, code="X-01-OLD", active=False)
        db.session.commit()
    out = tmp_path / "posters"
    res = runner.invoke(args=["qr", "posters", "--unit", "T-01", "--out", str(out), "--format", "png,svg,pdf"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["X-01-Q1.pdf", "X-01-Q1.png", "X-01-Q1.svg", "X-01-Q2.pdf", "X-01-Q2.png", "X-01-Q2.svg"]
    from PIL import Image

    with Image.open(out / "X-01-Q1.png") as im:
        assert im.size == (1748, 2480)  # A5 at 300 dpi
    svg = (out / "X-01-Q1.svg").read_text(encoding="utf-8")
    assert 'width="148mm" height="210mm"' in svg
    assert "UBND phường Hòa Bình" in svg and "Quầy 1 — Đất đai" in svg and "Quét mã QR" in svg
    assert "sipas.test/c/" in svg
    assert (out / "X-01-Q1.pdf").read_bytes().startswith(b"%PDF")
    assert runner.invoke(args=["qr", "posters", "--unit", "NOPE", "--out", str(out)]).exit_code == 1
    assert runner.invoke(args=["qr", "posters", "--unit", "T-01", "--out", str(out), "--format", "gif"]).exit_code == 2


def test_qr_rotate_and_link_commands(app, client, runner, place):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import AuditLog

    old_url = place.url
    res = runner.invoke(args=["qr", "rotate", "--counter", place.counter_code])
    assert res.exit_code == 0, res.output
    new_url = res.output.strip().splitlines()[-1]
    assert client.get(old_url).status_code == 410
    path = new_url.replace("http://sipas.test", "")
    assert client.get(path).status_code == 200
    with app.app_context():
        log = db.session.scalars(select(AuditLog).where(AuditLog.action == "token_rotate")).all()
        assert len(log) == 1 and log[0].target_id == place.counter_code and log[0].actor == "cli"
        assert log[0].details["token_version"] == 2
    assert runner.invoke(args=["qr", "rotate", "--counter", "NOPE"]).exit_code == 1
    res = runner.invoke(args=["qr", "link", "--counter", place.counter_code, "--dossier", "HS-77"])
    assert res.exit_code == 0
    link = res.output.strip().replace("http://sipas.test", "")
    assert "?d=" in link
    hidden = open_form(client, link)
    assert hidden.get("d")
