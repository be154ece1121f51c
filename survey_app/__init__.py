"""SIPAS: collection and analysis of citizens' satisfaction with public
administrative services.  `create_app` is the application factory."""
import os
import secrets
from pathlib import Path

from flask import Flask

from .config import Defaults, derive, normalise_database_url, plain_env
from .extensions import babel, cache, csrf, db, limiter, login_manager, migrate


def _secret_key(instance_path: str) -> str:
    """SECRET_KEY generated once into instance/secret_key (0600)."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def create_app(config=None, instance_path=None) -> Flask:
    """Build the app.  `config` overrides everything else; `instance_path`
    (default: `instance/` beside the package, or env SIPAS_INSTANCE_PATH)
    holds the SQLite database, the generated secret and local config."""
    instance_path = instance_path or os.environ.get("SIPAS_INSTANCE_PATH") or None
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("SIPAS")
    app.config.update(plain_env())
    if config:
        app.config.update(config)
    derive(app.config)

    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        path = Path(app.instance_path) / app.config["SQLITE_FILENAME"]
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    secret_from_file = not app.config["SECRET_KEY"]
    if secret_from_file:
        app.config["SECRET_KEY"] = _secret_key(app.instance_path)

    from .security import check_production, init_security

    check_production(app, secret_from_file)
    from .assets import init_assets

    init_assets(app)  # first: its compression hook then runs after every other after-request hook
    init_security(app)

    if int(app.config["PROXY_FIX"] or 0):
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent.parent / "migrations"),
                     render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    cache.init_app(app)

    from .i18n import init_i18n

    init_i18n(app, babel)

    from . import models  # noqa: F401  (register models with the metadata)
    from .public import bp as public_bp
    from .results import bp as results_bp  # the published figures (/public/...)
    from .services import aggregates  # noqa: F401  (the response_cells triggers come with create_all)
    from .staff import bp as staff_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(staff_bp, url_prefix="/staff")
    app.register_blueprint(results_bp)
    from .api import init_api

    init_api(app)
    from .errors import register_error_handlers

    register_error_handlers(app)

    from .services import jobs

    jobs.init_app(app)

    from .cli import register_cli

    register_cli(app)
    return app
