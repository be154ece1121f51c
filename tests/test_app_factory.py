from pathlib import Path

from survey_app import create_app
from survey_app.config import normalise_database_url

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_embedded_sqlite_in_instance(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SECRET_KEY", "given")  # nothing written into the real instance/
    app = create_app({"TESTING": True})
    assert Path(app.instance_path) == ROOT / "instance"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{ROOT / 'instance' / 'sipas.sqlite3'}"
    assert app.config["TIMEZONE"] == "Asia/Ho_Chi_Minh"


def test_secret_key_generated_once_into_instance(tmp_path, monkeypatch):
    """In process (no interpreter start-up): the first app writes a random key
    into instance/secret_key (0600); every later app reads that same key."""
    for name in ("SECRET_KEY", "SIPAS_SECRET_KEY", "DATABASE_URL", "SIPAS_SQLALCHEMY_DATABASE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIPAS_INSTANCE_PATH", str(tmp_path / "inst"))
    key_file = tmp_path / "inst" / "secret_key"
    assert not key_file.exists()
    cfg = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    first = create_app(cfg).config["SECRET_KEY"]
    assert len(first) == 64 and set(first) <= set("0123456789abcdef")  # 32 random bytes, hex
    assert key_file.read_text().strip() == first
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert create_app(cfg).config["SECRET_KEY"] == first
    # another instance folder gets another key
    monkeypatch.setenv("SIPAS_INSTANCE_PATH", str(tmp_path / "other"))
    assert create_app(cfg).config["SECRET_KEY"] != first


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h:5432/x")
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("SIPAS_DEFAULT_TARGET", "0.95")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h:5432/x"
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["DEFAULT_TARGET"] == 0.95
    # the mapping passed to create_app wins over the environment
    assert create_app({"SECRET_KEY": "explicit"}).config["SECRET_KEY"] == "explicit"


def test_normalise_database_url():
    assert normalise_database_url("postgres://a@b/c") == "postgresql+psycopg://a@b/c"
    assert normalise_database_url("postgresql+psycopg://a@b/c") == "postgresql+psycopg://a@b/c"
    assert normalise_database_url("sqlite:///x") == "sqlite:///x"


def test_health_ok(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json["database"] == "ok"


def test_health_503_when_database_unreachable(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/none",
                   SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 1}})
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
