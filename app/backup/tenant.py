"""Which rows belong to a tenant, derived from the schema itself.

A tenant is one registered platform (issuer + client id) and every row that hangs off it:
a table belongs to the tenant when it has a non-nullable foreign key to a tenant table, so a
new table is covered without touching this file. A nullable foreign key flagged
``info={TENANT: True}`` ties a row to the tenant when it is set (``audit_event``: a NULL
platform is the installation's own event, in no tenant's export). Tables that belong to no
tenant, or that a backup leaves out on purpose, are named below with the reason;
``tests/test_backup.py`` fails when a table is in none of these sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    Time,
    TypeDecorator,
    select,
)
from sqlalchemy.types import TypeEngine

ROOT_TABLE = "platform"

#: The installation's own tables: not part of any tenant.
GLOBAL_TABLES: dict[str, str] = {
    "tool_key": "the tool's signing keys belong to the installation (its JWKS URL)",
    "tool_secret": "the installation's generated secret",
    "demo_platform_key": "the demonstration platform's key",
    "lease": "which process runs periodic work now: leases of a few minutes",
    "platform_invitation": "the operator's one-time registration invitations (hashes only)",
    "verify_miss": "unknown certificate codes asked per client address and minute (rate "
    "limiting of /verify); deleted after a few minutes",
}

#: Tenant tables a backup leaves out on purpose.
EXCLUDED_TABLES: dict[str, str] = {
    "web_session": "sign-ins: after a restore people open blend727 from the LMS again",
    "lti_used_nonce": "replay protection of launches that are minutes old",
    "certificate_job": "ZIPs of certificates built on request; kept two hours, made again at will",
    "lti_handoff": "two-minute hand-offs of a launch to a new window",
}

#: ``Column.info`` flag of a column naming a file under BLEND727_UPLOAD_DIR.
UPLOAD_KEY = "upload_key"
#: ``Column.info`` flag of a nullable foreign key that still names the row's tenant.
TENANT = "tenant"
#: ``Column.info`` key of an id column that is a foreign key in all but name ("table.column",
#: e.g. to break a cycle): remapped on import once the rows it names exist.
REFERENCES = "references"


@dataclass(frozen=True)
class TenantTable:
    table: Table
    owner: ForeignKey | None  # the non-nullable foreign key tying a row to the tenant
    depth: int  # foreign-key hops from the platform

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def upload_columns(self) -> list[Column[Any]]:
        return [c for c in self.table.columns if c.info.get(UPLOAD_KEY)]

    @property
    def soft_references(self) -> list[tuple[Column[Any], Column[Any]]]:
        """(column, the column it names) for ids kept without a foreign key."""
        found = []
        for column in self.table.columns:
            target = column.info.get(REFERENCES)
            if target:
                table_name, _, column_name = str(target).partition(".")
                found.append((column, self.table.metadata.tables[table_name].c[column_name]))
        return found


def tenant_tables(metadata: MetaData) -> list[TenantTable]:
    """The tenant's tables, parents before children (the order of an export and an import)."""
    found: dict[str, TenantTable] = {}
    for table in metadata.sorted_tables:
        if table.name == ROOT_TABLE:
            found[table.name] = TenantTable(table, None, 0)
            continue
        if table.name in GLOBAL_TABLES or table.name in EXCLUDED_TABLES:
            continue
        owners = [
            fk
            for fk in table.foreign_keys
            if (not fk.parent.nullable or fk.parent.info.get(TENANT))
            and fk.column.table.name in found
            and fk.column.table.name != table.name
        ]
        if owners:
            owner = min(owners, key=lambda fk: (found[fk.column.table.name].depth, fk.parent.name))
            found[table.name] = TenantTable(table, owner, found[owner.column.table.name].depth + 1)
    return list(found.values())


def unclassified_tables(metadata: MetaData) -> list[str]:
    """Tables that are neither the tenant's nor named global or excluded."""
    known = {t.name for t in tenant_tables(metadata)} | set(GLOBAL_TABLES) | set(EXCLUDED_TABLES)
    return sorted(t.name for t in metadata.sorted_tables if t.name not in known)


def belongs(tables: dict[str, TenantTable], name: str, platform_id: int) -> ColumnElement[bool]:
    """WHERE clause: rows of ``name`` that belong to the platform (nested IN subqueries along
    the owner keys: no id lists in memory, whatever the tenant's size)."""
    entry = tables[name]
    if entry.owner is None:
        [pk] = list(entry.table.primary_key.columns)
        return pk == platform_id
    parent = entry.owner.column
    inner: Select[Any] = select(parent).where(belongs(tables, parent.table.name, platform_id))
    return entry.owner.parent.in_(inner)


# -- values in JSON -------------------------------------------------------------------------


class UnsupportedColumn(TypeError):
    pass


def encode(value: Any) -> Any:
    """A column value as JSON (datetimes and dates ISO-8601, decimals as strings)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def base_type(column: Column[Any]) -> TypeEngine[Any]:
    kind: TypeEngine[Any] = column.type
    while isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return kind


def decoder(column: Column[Any]) -> Callable[[Any], Any] | None:
    """How to turn the JSON of ``column`` back into its Python value (``None``: as it is).
    A column type not handled here raises: a new type must be taught to backups first."""
    kind = base_type(column)
    if isinstance(kind, Enum):  # a String subclass: names or values? decide before exporting
        raise UnsupportedColumn(f"{column.table.name}.{column.name}: Enum")
    if isinstance(kind, DateTime):
        return datetime.fromisoformat
    if isinstance(kind, Date):
        return date.fromisoformat
    if isinstance(kind, Time):
        return time.fromisoformat
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return Decimal
    if isinstance(kind, Integer | String | Boolean | JSON | Float):
        return None
    raise UnsupportedColumn(f"{column.table.name}.{column.name}: {type(kind).__name__}")
