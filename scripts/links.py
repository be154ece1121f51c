"""Print the links of a running demo: the staff sign-in, the demo logins and one citizen form.

    FLASK_RUN_HOST=127.0.0.1 FLASK_RUN_PORT=5000 .venv/bin/python scripts/links.py

`make run` calls it on every start, with the address it is about to serve, so the printed links
always match it (PUBLIC_BASE_URL, when configured, wins: see survey_app/config.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from sqlalchemy import select

    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.models import Counter

    app = create_app()
    base = app.config["PUBLIC_BASE_URL"].rstrip("/")
    print(f"SIPAS đang chạy / is running:  {base}/staff/login")
    creds = Path(app.instance_path) / "demo_credentials.txt"
    if creds.exists():
        print("Tài khoản demo / demo logins (user / password):")
        for line in creds.read_text(encoding="utf-8").splitlines():
            print(f"  {line}")
    with app.app_context():
        from survey_app.services.tokens import counter_url

        counter = db.session.scalar(select(Counter).where(Counter.active.is_(True)).order_by(Counter.code).limit(1))
        if counter is not None:
            print(f"Phiếu khảo sát của một quầy / a counter's citizen form ({counter.code}):")
            print(f"  {counter_url(counter)}")
    print("Mọi quầy / every counter:  .venv/bin/flask --app survey_app counters list")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
