"""Backup and restore, portable between SQLite and PostgreSQL.

`flask --app survey_app backup --out FILE` writes one zip file:

    manifest.json          format, format version, schema revision (Alembic),
                           source backend, time, and per table: its columns,
                           row count and the SHA-256 of its data member
    tables/<name>.jsonl    one JSON array per row, values in the manifest's
                           column order, rows ordered by primary key

Values are written in a backend-neutral form: timestamps as ISO 8601 in UTC,
dates as ISO dates, UUIDs as text, JSON columns as JSON.  Tables are read in
one consistent snapshot (PostgreSQL: one REPEATABLE READ READ ONLY
transaction; SQLite: the online-backup API copies the file first), streamed,
so memory stays flat whatever the size.

`flask --app survey_app restore FILE [--force]` checks the whole file first
(format, schema revision, columns of every table, row counts and checksums),
then loads every table in foreign-key order inside ONE transaction into a
migrated database: all or nothing.  It refuses a database that already holds
rows unless `--force`, which empties every table in that same transaction.
Self-referencing links (a unit's parent and successor) are filled in after
the rows exist, so any order and even cycles restore.  On PostgreSQL every
serial / identity sequence is set past the restored ids.

A backup holds password hashes, keyed dossier / device hashes and comments:
it is written 0600 and must be kept like the database itself.  The keyed
hashes are only comparable under the same SECRET_KEY: restore with the
instance's secret (never inside the backup).
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

FORMAT = "sipas-backup"
FORMAT_VERSION = 1
BATCH = 2000


class BackupError(Exception):
    """A backup or restore was refused; the message says why.  Nothing was written."""


@dataclass
class TableInfo:
    name: str
    columns: list[str]
    rows: int = 0
    sha256: str = ""


@dataclass
class Summary:
    revision: Optional[str]
    backend: str
    tables: list[TableInfo] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)


# ------------------------------------------------------------------ value codecs

def _kind(col: sa.Column) -> str:
    """A backend-neutral kind for a column type."""
    t = col.type
    impl = getattr(t, "impl", None)
    for typ in (t, impl) if impl is not None else (t,):
        if typ is None:
            continue
        if isinstance(typ, sa.Uuid):
            return "uuid"
        if isinstance(typ, sa.JSON):
            return "json"
        if isinstance(typ, sa.DateTime):
            return "datetime"
        if isinstance(typ, sa.Date):
            return "date"
        if isinstance(typ, sa.Time):
            return "time"
        if isinstance(typ, sa.LargeBinary):
            return "bytes"
        if isinstance(typ, sa.Boolean):
            return "bool"
        if isinstance(typ, sa.Numeric) and not isinstance(typ, sa.Float):
            return "decimal"
    return "plain"


def _encoder(kind: str) -> Callable[[Any], Any]:
    if kind == "uuid":
        return lambda v: None if v is None else str(v)
    if kind == "datetime":
        def enc(v):
            if v is None:
                return None
            if v.tzinfo is None:  # naive = UTC by the application's convention
                v = v.replace(tzinfo=dt.timezone.utc)
            return v.astimezone(dt.timezone.utc).isoformat()
        return enc
    if kind in ("date", "time"):
        return lambda v: None if v is None else v.isoformat()
    if kind == "bytes":
        return lambda v: None if v is None else base64.b64encode(bytes(v)).decode("ascii")
    if kind == "bool":
        return lambda v: None if v is None else bool(v)
    if kind == "decimal":
        return lambda v: None if v is None else str(v)
    return lambda v: v


def _decoder(kind: str) -> Callable[[Any], Any]:
    if kind == "uuid":
        return lambda v: None if v is None else uuid.UUID(v)
    if kind == "datetime":
        return lambda v: None if v is None else dt.datetime.fromisoformat(v)
    if kind == "date":
        return lambda v: None if v is None else dt.date.fromisoformat(v)
    if kind == "time":
        return lambda v: None if v is None else dt.time.fromisoformat(v)
    if kind == "bytes":
        return lambda v: None if v is None else base64.b64decode(v)
    if kind == "decimal":
        import decimal

        return lambda v: None if v is None else decimal.Decimal(v)
    if kind == "json":
        # null = SQL NULL; [value] = that JSON value (JSON null included)
        def dec(v):
            if v is None:
                return None
            if not isinstance(v, list) or len(v) != 1:
                raise ValueError("giá trị JSON phải có dạng [giá trị]")
            return sa.JSON.NULL if v[0] is None else v[0]
        return dec
    return lambda v: v


# ------------------------------------------------------------------ schema helpers

def _metadata() -> sa.MetaData:
    from .. import models  # noqa: F401  (tables registered on the metadata)
    from ..extensions import db

    return db.metadata


def _tables(metadata: sa.MetaData) -> list[sa.Table]:
    """Every application table, parents before children (foreign-key order);
    derived tables (`info["derived"]`: counts the triggers keep, stored figures) are rebuilt, not backed up."""
    return [t for t in metadata.sorted_tables if not t.info.get("derived")]


def schema_revision(conn: Connection) -> Optional[str]:
    """The Alembic revision of a database (None when it was not made by migrations)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    rows = [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    return ",".join(sorted(rows)) or None


def _pk_order(table: sa.Table) -> list[sa.Column]:
    return list(table.primary_key.columns) or list(table.columns)


def _reader(table: sa.Table) -> tuple[sa.Select, Callable[[Any], list]]:
    """(query, encode_row): every column of `table` ordered by primary key, and
    a function turning a result row into the backup's JSON values.

    A JSON column is written as `null` for SQL NULL and `[value]` otherwise,
    so SQL NULL and a JSON `null` stay distinct through a round trip."""
    cols = list(table.columns)
    kinds = [_kind(c) for c in cols]
    encoders = [_encoder(k) for k in kinds]
    json_idx = [i for i, k in enumerate(kinds) if k == "json"]
    flags = [cols[i].is_(None) for i in json_idx]
    q = sa.select(*cols, *flags).order_by(*_pk_order(table))
    width = len(cols)

    def encode(row) -> list:
        values = [enc(v) for enc, v in zip(encoders, row[:width])]
        for j, i in enumerate(json_idx):
            values[i] = None if row[width + j] else [values[i]]
        return values

    return q, encode


def _row_counts(conn: Connection, tables: list[sa.Table]) -> dict[str, int]:
    return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables}


# ------------------------------------------------------------------ backup

@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees one consistent state of the database."""
    if engine.dialect.name == "sqlite":
        src = engine.url.database
        if not src or src == ":memory:" or engine.url.query.get("mode") == "memory":
            with engine.connect() as conn:
                yield conn
            return
        tmpdir = tempfile.mkdtemp(prefix="sipas-backup-")
        copy = os.path.join(tmpdir, "snapshot.sqlite3")
        try:
            uri = src if src.startswith("file:") else None
            source = sqlite3.connect(src, uri=True) if uri else sqlite3.connect(src)
            target = sqlite3.connect(copy)
            try:
                source.backup(target)  # the online-backup API: a consistent copy
            finally:
                target.close()
                source.close()
            snap = sa.create_engine(f"sqlite:///{copy}")
            try:
                with snap.connect() as conn:
                    yield conn
            finally:
                snap.dispose()
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def backup(engine: Engine, out: str | os.PathLike, *, progress: Callable[[str], None] = lambda m: None) -> Summary:
    """Write a backup of every application table to `out` (zip); returns what was written."""
    metadata = _metadata()
    tables = _tables(metadata)
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    summary = Summary(revision=None, backend=engine.dialect.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    try:
        with _snapshot(engine) as conn, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED,
                                                         compresslevel=6, allowZip64=True) as zf:
            summary.revision = schema_revision(conn)
            insp = sa.inspect(conn)
            missing = [t.name for t in tables if not insp.has_table(t.name)]
            if missing:
                raise BackupError(f"cơ sở dữ liệu thiếu bảng: {', '.join(missing)} (chạy `flask db upgrade`)")
            for table in tables:
                info = TableInfo(table.name, [c.name for c in table.columns])
                q, encode = _reader(table)
                digest = hashlib.sha256()
                with zf.open(f"tables/{table.name}.jsonl", "w", force_zip64=True) as raw:
                    result = conn.execution_options(yield_per=BATCH).execute(q)
                    for part in result.partitions():
                        buf = io.StringIO()
                        for row in part:
                            buf.write(json.dumps(encode(row), ensure_ascii=False, separators=(",", ":"),
                                                 allow_nan=False))
                            buf.write("\n")
                        data = buf.getvalue().encode("utf-8")
                        digest.update(data)
                        raw.write(data)
                        info.rows += len(part)
                info.sha256 = digest.hexdigest()
                summary.tables.append(info)
                progress(f"{table.name}: {info.rows} dòng")
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "schema_revision": summary.revision,
                "source_backend": summary.backend,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "tables": [{"name": t.name, "columns": t.columns, "rows": t.rows, "sha256": t.sha256}
                           for t in summary.tables],
            }
            zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return summary


# ------------------------------------------------------------------ restore

def read_manifest(zf: zipfile.ZipFile, name: str = "backup") -> dict:
    try:
        manifest = json.loads(zf.read("manifest.json").decode("utf-8"))
    except KeyError:
        raise BackupError(f"{name}: không phải tệp sao lưu SIPAS (thiếu manifest.json)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"{name}: manifest.json hỏng ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{name}: không phải tệp sao lưu SIPAS")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{name}: phiên bản định dạng {manifest.get('format_version')!r} không được hỗ trợ "
                          f"(phiên bản này đọc {FORMAT_VERSION})")
    if not isinstance(manifest.get("tables"), list):
        raise BackupError(f"{name}: manifest.json thiếu danh sách bảng")
    return manifest


def _iter_rows(zf: zipfile.ZipFile, info: dict, name: str) -> Iterator[list]:
    member = f"tables/{info['name']}.jsonl"
    try:
        fh = zf.open(member)
    except KeyError:
        raise BackupError(f"{name}: thiếu dữ liệu bảng {info['name']}") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
            except ValueError:
                raise BackupError(f"{name}: bảng {info['name']}, dòng {lineno}: JSON hỏng") from None
            if not isinstance(row, list) or len(row) != len(info["columns"]):
                raise BackupError(f"{name}: bảng {info['name']}, dòng {lineno}: số cột sai")
            yield row


def verify(path: str | os.PathLike) -> dict:
    """Check a backup file whole (format, members, row counts, checksums) without
    touching any database; returns its manifest."""
    name = os.path.basename(str(path))
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BackupError(f"không tìm thấy tệp {path}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise BackupError(f"{name}: không phải tệp zip hợp lệ ({exc})") from None
    with zf:
        manifest = read_manifest(zf, name)
        for info in manifest["tables"]:
            digest = hashlib.sha256()
            member = f"tables/{info.get('name')}.jsonl"
            try:
                with zf.open(member) as fh:
                    n = 0
                    for line in fh:
                        digest.update(line)
                        n += 1
            except KeyError:
                raise BackupError(f"{name}: thiếu dữ liệu bảng {info.get('name')}") from None
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise BackupError(f"{name}: bảng {info.get('name')} hỏng ({exc})") from None
            if n != info.get("rows") or digest.hexdigest() != info.get("sha256"):
                raise BackupError(f"{name}: bảng {info.get('name')} không khớp số dòng / mã kiểm tra "
                                  f"(tệp bị sửa hoặc hỏng)")
    return manifest


def _check_compatible(manifest: dict, conn: Connection, tables: list[sa.Table], name: str) -> None:
    target_rev = schema_revision(conn)
    source_rev = manifest.get("schema_revision")
    if source_rev and target_rev and source_rev != target_rev:
        raise BackupError(f"{name}: bản sao lưu ở phiên bản lược đồ {source_rev}, cơ sở dữ liệu đích ở "
                          f"{target_rev}: nâng cấp / hạ cấp đích (`flask db upgrade {source_rev}`) rồi khôi phục")
    insp = sa.inspect(conn)
    by_name = {t.name: t for t in tables}
    listed = {info.get("name") for info in manifest["tables"]}
    unknown = sorted(str(n) for n in listed - set(by_name))
    if unknown:
        raise BackupError(f"{name}: bảng không có trong lược đồ này: {', '.join(unknown)}")
    absent = sorted(set(by_name) - listed)
    if absent:
        raise BackupError(f"{name}: bản sao lưu thiếu bảng: {', '.join(absent)}")
    for info in manifest["tables"]:
        table = by_name[info["name"]]
        if not insp.has_table(table.name):
            raise BackupError(f"cơ sở dữ liệu đích thiếu bảng {table.name} (chạy `flask db upgrade`)")
        want = [c.name for c in table.columns]
        if list(info.get("columns") or []) != want:
            raise BackupError(f"{name}: cột của bảng {table.name} khác lược đồ hiện tại "
                              f"({', '.join(info.get('columns') or [])} ≠ {', '.join(want)})")
        db_cols = {c["name"] for c in insp.get_columns(table.name)}
        if set(want) - db_cols:
            raise BackupError(f"cơ sở dữ liệu đích thiếu cột {', '.join(sorted(set(want) - db_cols))} "
                              f"ở bảng {table.name} (chạy `flask db upgrade`)")


def _reset_sequences(conn: Connection, tables: list[sa.Table]) -> None:
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, sa.Integer):
            continue
        col = pk[0].name
        seq = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                           {"t": table.name, "c": col}).scalar()
        if not seq:
            continue
        conn.execute(sa.text(
            f'SELECT setval(:seq, COALESCE((SELECT MAX("{col}") FROM "{table.name}"), 0) + 1, false)'),
            {"seq": seq})


def restore(engine: Engine, path: str | os.PathLike, *, force: bool = False,
            progress: Callable[[str], None] = lambda m: None) -> Summary:
    """Load a backup into the database behind `engine`, in one transaction."""
    name = os.path.basename(str(path))
    manifest = verify(path)
    metadata = _metadata()
    tables = _tables(metadata)
    by_name = {t.name: t for t in tables}
    summary = Summary(revision=manifest.get("schema_revision"), backend=manifest.get("source_backend", "?"))
    with zipfile.ZipFile(path) as zf, engine.connect() as conn:
        with conn.begin():
            _check_compatible(manifest, conn, tables, name)
            if conn.dialect.name == "postgresql":
                # No concurrent writer may slip rows in between the emptiness
                # check and the load.
                names = ", ".join(f'"{t.name}"' for t in tables)
                conn.execute(sa.text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))
            elif conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            counts = _row_counts(conn, tables)
            filled = {k: v for k, v in counts.items() if v}
            if filled and not force:
                raise BackupError(
                    "cơ sở dữ liệu đích không trống (" + ", ".join(f"{k}: {v}" for k, v in sorted(filled.items()))
                    + "): khôi phục chỉ vào cơ sở dữ liệu trống đã migrate, hoặc dùng --force để xoá hết trước")
            if filled:
                for table in reversed(tables):
                    conn.execute(table.delete())
            # Parents first (the manifest's order is the source's FK order; use ours).
            order = sorted(manifest["tables"], key=lambda i: tables.index(by_name[i["name"]]))
            for info in order:
                table = by_name[info["name"]]
                cols = [table.c[c] for c in info["columns"]]
                decoders = [_decoder(_kind(c)) for c in cols]
                self_fk = [c.name for c in cols
                           if any(fk.column.table is table for fk in c.foreign_keys)]
                pk = [c.name for c in table.primary_key.columns]
                later: list[dict] = []
                batch: list[dict] = []
                n = 0

                insert = table.insert().values({
                    c.name: sa.bindparam(c.name, type_=sa.JSON(none_as_null=True)) for c in cols
                    if _kind(c) == "json"}) if any(_kind(c) == "json" for c in cols) else table.insert()

                def flush():
                    if batch:
                        conn.execute(insert, batch)
                        batch.clear()

                for row in _iter_rows(zf, info, name):
                    try:
                        values = {c.name: dec(v) for c, dec, v in zip(cols, decoders, row)}
                    except (TypeError, ValueError) as exc:
                        raise BackupError(f"{name}: bảng {table.name}: giá trị không đọc được ({exc})") from None
                    if self_fk:
                        links = {k: values[k] for k in self_fk}
                        if any(v is not None for v in links.values()):
                            later.append({**{f"_pk_{k}": values[k] for k in pk},
                                          **{f"_v_{k}": v for k, v in links.items()}})
                            for k in self_fk:
                                values[k] = None
                    batch.append(values)
                    n += 1
                    if len(batch) >= BATCH:
                        flush()
                flush()
                if later:
                    stmt = (table.update()
                            .where(*[table.c[k] == sa.bindparam(f"_pk_{k}") for k in pk])
                            .values({k: sa.bindparam(f"_v_{k}") for k in self_fk}))
                    for i in range(0, len(later), BATCH):
                        conn.execute(stmt, later[i:i + BATCH])
                summary.tables.append(TableInfo(table.name, info["columns"], n, info.get("sha256", "")))
                progress(f"{table.name}: {n} dòng")
            if conn.dialect.name == "postgresql":
                _reset_sequences(conn, tables)
    return summary


# ------------------------------------------------------------------ comparison (tests, checks)

def table_digest(conn: Connection, table: sa.Table) -> tuple[int, str]:
    """(rows, SHA-256) of a table's content in the backend-neutral encoding,
    ordered by primary key: equal digests = equal tables, across backends."""
    q, encode = _reader(table)
    digest = hashlib.sha256()
    n = 0
    for row in conn.execute(q):
        values = encode(row)
        digest.update(json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
        n += 1
    return n, digest.hexdigest()


def database_digest(engine: Engine) -> dict[str, tuple[int, str]]:
    with engine.connect() as conn:
        return {t.name: table_digest(conn, t) for t in _tables(_metadata())}
