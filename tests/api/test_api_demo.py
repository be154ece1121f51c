"""The demo province's stand-in one-stop system (issue 12): a first run
shows offered counts, response rates among offered and the QĐ 766 metric."""
from __future__ import annotations


def test_demo_seed_sends_dossier_events_through_the_service(make_loaded_app):
    import sqlalchemy as sa

    from survey_app.extensions import db
    from survey_app.models import ApiClient, Dossier, DossierEvent, Volume
    from survey_app.services import demo, stats

    app = make_loaded_app()
    with app.app_context():
        demo.seed(3000, seed=5, password="demo-password-123")
        assert db.session.scalar(sa.select(ApiClient.name)) == demo.DEMO_API_CLIENT
        n_dossiers = db.session.scalar(sa.select(sa.func.count()).select_from(Dossier))
        assert n_dossiers > 500
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DossierEvent)) >= 2 * n_dossiers
        units = set(db.session.scalars(sa.select(Dossier.unit_id).distinct()))
        # One source per unit and period: the event units have no typed volume rows.
        assert not db.session.scalar(sa.select(sa.func.count()).select_from(Volume).where(Volume.unit_id.in_(units)))
        res = stats.compute("2026")
    t = res.table[res.table["level"] == "unit"]
    sent = t[t["offered"].notna()]
    assert len(sent) == 3 and (sent["offered"] > 0).all() and (sent["link_responses"] > 0).all()
    assert ((sent["link_response_rate"] > 0) & (sent["link_response_rate"] < 1)).all()
    assert ((sent["m766_rate"] > 0.7) & (sent["m766_rate"] <= 1)).all()
    assert (sent["N"] > 0).all()
    assert t[t["offered"].isna()].shape[0] > 10  # the other units: QR posters only, offered not known
    assert res.meta["m766"]["version"] == "766-v1"
