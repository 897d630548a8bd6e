"""``blend727 export`` / ``blend727 import``: one tenant as JSON lines (format in
docs/backup.md).

An export is read in one transaction (a consistent snapshot on PostgreSQL when the CLI opens
it REPEATABLE READ); an import is one transaction too: every row or none, primary keys
assigned by the target database and every foreign key remapped, and the handed-in files moved
into the upload directory only after the commit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import __version__
from app.backup.tenant import (
    ROOT_TABLE,
    TenantTable,
    UnsupportedColumn,
    base_type,
    belongs,
    decoder,
    encode,
    tenant_tables,
)
from app.core.db import Database
from app.core.migrate import alembic_config
from app.core.time import utcnow
from app.learning.storage import FileStore
from app.models import metadata
from app.platforms.models import Platform
from app.platforms.repository import PlatformRepository

FORMAT = "blend727-tenant"
FORMAT_VERSION = 1
CHUNK = 1024 * 1024  # raw bytes of a file per data line
BATCH = 500


class BackupError(Exception):
    """An export or import that cannot go ahead; the message is for the operator."""


@dataclass
class Summary:
    issuer: str
    client_id: str
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    file_bytes: int = 0
    missing_files: list[str] = field(default_factory=list)
    platform_id: int | None = None  # on import: the platform's id in the target database
    dry_run: bool = False

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def _line(out: IO[str], obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")


def current_revision(session: Session) -> str | None:
    return MigrationContext.configure(session.connection()).get_current_revision()


def find_platform(
    session: Session,
    *,
    platform_id: int | None = None,
    issuer: str | None = None,
    client_id: str | None = None,
) -> Platform:
    """The platform an export is about: by id, or by issuer (and client id if needed)."""
    repo = PlatformRepository(session)
    if platform_id is not None:
        found = session.get(Platform, platform_id)
        if found is None:
            raise BackupError(f"no platform with id {platform_id}")
        return found
    if issuer and client_id:
        match = repo.by_issuer_and_client(issuer, client_id)
        if match is None:
            raise BackupError(f"no platform with issuer {issuer} and client id {client_id}")
        return match
    if issuer:
        candidates = list(repo.by_issuer(issuer))
        if len(candidates) != 1:
            raise BackupError(
                f"{len(candidates)} platforms have issuer {issuer}: add --client-id"
                if candidates
                else f"no platform with issuer {issuer}"
            )
        return candidates[0]
    raise BackupError("name the platform: --platform-id, or --issuer (and --client-id)")


def _file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def export_tenant(
    session: Session,
    platform_id: int,
    out: IO[str],
    *,
    upload_dir: Path,
    include_files: bool = True,
) -> Summary:
    """Write the platform and everything hanging off it to ``out``."""
    platform = session.get(Platform, platform_id)
    if platform is None:
        raise BackupError(f"no platform with id {platform_id}")
    tables = tenant_tables(metadata)
    by_name = {t.name: t for t in tables}
    summary = Summary(platform.issuer, platform.client_id, platform_id=platform_id)
    _line(
        out,
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "app_version": __version__,
            "alembic_revision": current_revision(session),
            "exported_at": utcnow().isoformat(),
            "platform": {"issuer": platform.issuer, "client_id": platform.client_id},
            "files": "included" if include_files else "referenced",
            "tables": [t.name for t in tables],
            "columns": {t.name: [c.name for c in t.table.columns] for t in tables},
        },
    )
    file_keys: dict[str, None] = {}
    for entry in tables:
        stmt = (
            select(entry.table)
            .where(belongs(by_name, entry.name, platform_id))
            .order_by(*entry.table.primary_key.columns)
            .execution_options(yield_per=1000)
        )
        count = 0
        for row in session.execute(stmt).mappings():
            _line(out, {"table": entry.name, "row": {k: encode(v) for k, v in row.items()}})
            count += 1
            for column in entry.upload_columns:
                if row[column.name]:
                    file_keys[str(row[column.name])] = None
        summary.rows[entry.name] = count
    store = FileStore(upload_dir, 0)
    for key in file_keys:
        path = store.path(key)
        if not path.is_file():
            summary.missing_files.append(key)
            _line(out, {"file": {"key": key, "missing": True}})
            continue
        size, sha256 = _file_digest(path)
        _line(out, {"file": {"key": key, "size": size, "sha256": sha256}})
        summary.files += 1
        summary.file_bytes += size
        if include_files:
            with open(path, "rb") as source:
                while chunk := source.read(CHUNK):
                    _line(out, {"data": base64.b64encode(chunk).decode("ascii")})
    _line(out, {"end": {"rows": summary.rows, "files": summary.files}})
    return summary


# -- import ---------------------------------------------------------------------------------


def _autoincrement_pk(table: Table) -> Column[Any] | None:
    """The single integer primary key the database assigns (``None``: the key is kept or is
    a foreign key, remapped like the others)."""
    columns = list(table.primary_key.columns)
    if len(columns) != 1 or columns[0].foreign_keys:
        return None
    return columns[0] if isinstance(base_type(columns[0]), Integer) else None


def _check_header(header: dict[str, Any], tables: dict[str, TenantTable]) -> None:
    if header.get("format") != FORMAT:
        raise BackupError("this is not a file made by `blend727 export`")
    if header.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"format version {header.get('format_version')} is not one this blend727 reads "
            f"({FORMAT_VERSION})"
        )
    revision = header.get("alembic_revision")
    known = [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    if revision not in known:
        raise BackupError(
            f"the file was made at schema revision {revision}, which this blend727 "
            f"({__version__}) does not know: import it with the version that made it or newer"
        )
    columns: dict[str, list[str]] = header.get("columns") or {}
    for name in header.get("tables") or []:
        if name not in tables:
            raise BackupError(f"table {name} of the file is not a tenant table here")
        table = tables[name].table
        unknown = sorted(set(columns.get(name, [])) - set(table.c.keys()))
        if unknown:
            raise BackupError(f"{name}: columns {', '.join(unknown)} do not exist here")
        for column in table.columns:
            if column.name in columns.get(name, []) or column is _autoincrement_pk(table):
                continue
            if not (column.nullable or column.default is not None or column.server_default):
                raise BackupError(f"{name}.{column.name} is required here but not in the file")
        for column in table.columns:
            try:
                decoder(column)
            except UnsupportedColumn as exc:
                raise BackupError(f"cannot import a column of type {exc}") from None


class _Rows:
    """Inserts rows in batches, remembering old → new primary keys to remap foreign keys."""

    def __init__(self, session: Session, tables: dict[str, TenantTable]) -> None:
        self.session = session
        self.tables = tables
        self.ids: dict[str, dict[Any, Any]] = {}
        self.counts: dict[str, int] = {}
        self.table: str | None = None
        self.buffer: list[dict[str, Any]] = []
        self.decoders: dict[str, dict[str, Any]] = {}
        # Ids kept without a foreign key (tenant.REFERENCES): set once every row is in.
        self.deferred: list[tuple[Column[Any], Column[Any], Any, Any]] = []

    def add(self, name: str, row: dict[str, Any]) -> None:
        if name not in self.tables:
            raise BackupError(f"rows of table {name}, which the header does not list")
        if name != self.table:
            self.flush()
            if name in self.counts:
                raise BackupError(f"rows of {name} are not together: the file is damaged")
            self.table = name
            self.counts[name] = 0
        self.buffer.append(row)
        if len(self.buffer) >= BATCH:
            self.flush()

    def _mapping(self, column: Column[Any]) -> dict[Any, Any] | None:
        """old → new of the values in ``column`` (``None``: values are kept as they are)."""
        if column is _autoincrement_pk(column.table):
            return self.ids.setdefault(column.table.name, {})
        for fk in column.foreign_keys:
            return self._mapping(fk.column)
        return None

    def _values(self, entry: TenantTable, row: dict[str, Any]) -> dict[str, Any]:
        decoders = self.decoders.setdefault(
            entry.name, {c.name: decoder(c) for c in entry.table.columns}
        )
        values: dict[str, Any] = {}
        for name, raw in row.items():
            decode = decoders[name]
            value = decode(raw) if decode is not None and raw is not None else raw
            column = entry.table.c[name]
            for fk in column.foreign_keys:
                if value is None:
                    break
                if fk.column.table.name not in self.tables:
                    raise BackupError(f"{entry.name}.{name} refers outside the tenant")
                mapping = self._mapping(fk.column)
                if mapping is not None:
                    if value not in mapping:
                        raise BackupError(
                            f"a row of {entry.name} refers to {fk.column.table.name} {value}, "
                            "which is not in the file"
                        )
                    value = mapping[value]
            values[name] = value
        return values

    def flush(self) -> None:
        if not self.buffer or self.table is None:
            return
        entry = self.tables[self.table]
        table = entry.table
        auto = _autoincrement_pk(table)
        params = [self._values(entry, row) for row in self.buffer]
        soft = entry.soft_references
        later = [{c.name: p.get(c.name) for c, _ in soft} for p in params]
        for p in params:
            p.update({c.name: None for c, _ in soft})
        try:
            if auto is not None:
                olds = [p.pop(auto.name) for p in params]
                stmt = insert(table).returning(auto, sort_by_parameter_order=True)
                new = list(self.session.execute(stmt, params).scalars().all())
                self.ids.setdefault(table.name, {}).update(zip(olds, new, strict=True))
            else:
                self.session.execute(insert(table), params)
        except IntegrityError as exc:
            raise BackupError(
                f"rows of {table.name} conflict with what this database holds: {exc.orig}"
            ) from None
        if soft:
            if auto is None:
                raise BackupError(f"{table.name}: an id without a foreign key needs an id")
            for new_pk, values in zip(new, later, strict=True):
                for column, target in soft:
                    if values[column.name] is not None:
                        self.deferred.append((column, target, new_pk, values[column.name]))
        self.counts[table.name] += len(params)
        self.buffer.clear()

    def finish(self) -> None:
        """Set the ids kept without a foreign key, now that the rows they name exist."""
        self.flush()
        by_column: dict[Column[Any], list[dict[str, Any]]] = {}
        for column, target, new_pk, old in self.deferred:
            mapping = self._mapping(target)
            value = old if mapping is None else mapping.get(old)
            if value is None:
                raise BackupError(
                    f"a row of {column.table.name} refers to {target.table.name} {old}, "
                    "which is not in the file"
                )
            by_column.setdefault(column, []).append({"_pk": new_pk, "_value": value})
        for column, params in by_column.items():
            table = column.table
            auto = _autoincrement_pk(table)
            assert auto is not None
            stmt = (
                update(table)
                .where(auto == bindparam("_pk"))
                .values({column.name: bindparam("_value")})
            )
            self.session.connection().execute(stmt, params)
        self.deferred.clear()


@dataclass
class _IncomingFile:
    key: str
    size: int
    sha256: str
    final: Path
    partial: Path | None  # None: checked only (dry run, or already in place)
    digest: Any = field(default_factory=hashlib.sha256)
    received: int = 0
    handle: IO[bytes] | None = None


def _lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            raise BackupError(f"line {number} is not JSON: the file is damaged") from None
        if not isinstance(obj, dict):
            raise BackupError(f"line {number} is not a JSON object: the file is damaged")
        yield obj


def import_tenant(
    database: Database,
    lines: Iterable[str],
    *,
    upload_dir: Path,
    dry_run: bool = False,
) -> Summary:
    """Import a tenant exported by ``export_tenant``: all or nothing; ``dry_run`` does the
    whole import inside the transaction and rolls it back."""
    stream = _lines(lines)
    header = next(stream, None)
    if header is None:
        raise BackupError("the file is empty")
    tables = {t.name: t for t in tenant_tables(metadata)}
    _check_header(header, tables)
    ident = header.get("platform") or {}
    summary = Summary(str(ident.get("issuer")), str(ident.get("client_id")), dry_run=dry_run)
    referenced = header.get("files") == "referenced"
    store = FileStore(upload_dir, 0)
    staged: list[_IncomingFile] = []
    session = database.sessionmaker()
    try:
        existing = PlatformRepository(session).by_issuer_and_client(
            summary.issuer, summary.client_id
        )
        if existing is not None:
            raise BackupError(
                f"this database already has the platform {summary.issuer} with client id "
                f"{summary.client_id} (id {existing.id}); nothing was imported. Import into "
                "another database, or remove that platform first."
            )
        rows = _Rows(session, tables)
        incoming: _IncomingFile | None = None
        ended: dict[str, Any] | None = None

        def close_file() -> None:
            nonlocal incoming
            if incoming is None:
                return
            if incoming.handle is not None:
                incoming.handle.close()
            if (
                incoming.received != incoming.size
                or incoming.digest.hexdigest() != incoming.sha256
            ):
                raise BackupError(f"file {incoming.key} is damaged or incomplete")
            incoming = None

        for obj in stream:
            if ended is not None:
                raise BackupError("there are lines after the end line")
            if "table" in obj:
                rows.add(str(obj["table"]), obj.get("row") or {})
            elif "file" in obj:
                rows.flush()
                close_file()
                meta = obj["file"]
                try:
                    final = store.path(str(meta.get("key", "")))
                except ValueError:
                    raise BackupError("a file line has a bad key: the file is damaged") from None
                key = final.name
                if meta.get("missing"):
                    summary.missing_files.append(key)
                    continue
                size, sha256 = int(meta["size"]), str(meta["sha256"])
                summary.files += 1
                summary.file_bytes += size
                present = final.exists()
                if present and _file_digest(final) != (size, sha256):
                    raise BackupError(
                        f"file {key} already exists in {upload_dir} with other content"
                    )
                if referenced:  # no data lines: the files are copied on their own
                    if not present:
                        summary.missing_files.append(key)
                    continue
                partial = (
                    None if dry_run or present else final.with_name(final.name + ".import")
                )
                incoming = _IncomingFile(key, size, sha256, final, partial)
                if partial is not None:
                    partial.parent.mkdir(parents=True, exist_ok=True)
                    incoming.handle = open(partial, "wb")  # noqa: SIM115 - closed in close_file
                    staged.append(incoming)
            elif "data" in obj:
                if incoming is None:
                    raise BackupError("file data without a file line: the file is damaged")
                chunk = base64.b64decode(str(obj["data"]))
                incoming.received += len(chunk)
                incoming.digest.update(chunk)
                if incoming.handle is not None:
                    incoming.handle.write(chunk)
            elif "end" in obj:
                rows.finish()
                close_file()
                ended = obj["end"]
            else:
                raise BackupError("a line of unknown kind: the file is damaged")
        if ended is None:
            raise BackupError("the file has no end line: it is incomplete")
        expected = {k: v for k, v in (ended.get("rows") or {}).items() if v}
        if expected != rows.counts or ended.get("files") != summary.files:
            raise BackupError("the rows or files do not add up to the end line: damaged file")
        summary.rows = {name: rows.counts.get(name, 0) for name in header.get("tables") or []}
        root = rows.ids.get(ROOT_TABLE, {})
        summary.platform_id = next(iter(root.values()), None)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        for item in staged:
            if item.handle is not None:
                item.handle.close()
            if item.partial is not None:
                item.partial.unlink(missing_ok=True)
        raise
    finally:
        session.close()
    for item in staged:
        if item.partial is not None:
            os.replace(item.partial, item.final)
    return summary
