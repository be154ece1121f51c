"""Transfer of pages and static files: compression and cache headers.

- HTML, CSS, JavaScript, JSON and SVG answers are compressed (Flask-Compress:
  brotli, else gzip) for every client that says it accepts it.
- Every `url_for("static", filename=...)` carries `v=<content hash>` (added
  here by a URL default, so templates write nothing special).  A request with
  the current hash gets a one-year immutable cache lifetime; any other (no
  version, an old one) gets `no-cache`, so a changed file is never served
  stale from a browser's cache.

`static_hash(filename)` is the one place that versions a static file.
"""
from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path

from flask import Flask, request
from flask_compress import Compress

STATIC = Path(__file__).parent / "static"
#: Cache-Control of a static file requested with its current content hash.
IMMUTABLE = "public, max-age=31536000, immutable"
VERSION_ARG = "v"

compress = Compress()


@functools.lru_cache(maxsize=64)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    raw = hashlib.sha256(path.read_bytes()).digest()
    return base64.urlsafe_b64encode(raw).decode()[:10]


def static_hash(filename: str) -> str:
    """A few URL-safe characters of the SHA-256 of static/<filename> ("" when absent).
    Re-read when the file changes (its mtime or size)."""
    path = (STATIC / filename).resolve()
    if STATIC.resolve() not in path.parents:
        return ""
    try:
        st = path.stat()
    except OSError:
        return ""
    return _digest(path, st.st_mtime_ns, st.st_size)


def _version_static_urls(endpoint: str, values: dict) -> None:
    if endpoint == "static" and VERSION_ARG not in values and values.get("filename"):
        version = static_hash(values["filename"])
        if version:
            values[VERSION_ARG] = version


def _static_cache_headers(resp):
    if request.endpoint != "static" or resp.status_code not in (200, 304):
        return resp
    filename = (request.view_args or {}).get("filename", "")
    version = request.args.get(VERSION_ARG)
    if version and version == static_hash(filename):
        resp.headers["Cache-Control"] = IMMUTABLE
        resp.headers.pop("Expires", None)
    else:
        resp.headers["Cache-Control"] = "no-cache"
    return resp


def init_assets(app: Flask) -> None:
    """Register compression first, so that it runs after every other
    after-request hook (Flask runs them in reverse order) and compresses the
    final body.  The COMPRESS_* settings are in config.Defaults."""
    compress.init_app(app)
    app.after_request(_static_cache_headers)
    app.url_defaults(_version_static_urls)
