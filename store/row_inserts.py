"""Inserts of new rows, compiled once per dialect and run on the driver's cursor.

The intake writes a submission as four or five small inserts (domain/intake/submissions.py). Through
`Connection.execute` each one paid for SQLAlchemy's statement-cache look-up, its execution
context and its result set-up: more CPU than SQLite took to run the insert (bench/README.md,
"row inserts"). Here SQLAlchemy still compiles each table's INSERT, once per dialect, so the SQL,
its casts and its parameter style are exactly what `Connection.execute` would send, and each
value still goes through its column type's own bind processor (UTC datetimes, JSON). Only the
per-call machinery is skipped: the statement runs on the DBAPI cursor of the connection's open
transaction. A driver error is raised as SQLAlchemy's own class (IntegrityError,
OperationalError ...) without its parameters, so callers catch what they always caught and no
personal data reaches a log; a lost connection is then found and invalidated by the
transaction's rollback, as after any failed statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

Processor = Callable[[Any], Any]


class RowInsert:
    """One table's INSERT of an object's column values, for one dialect."""

    def __init__(
        self,
        table: Table,
        dialect: Dialect,
        *,
        values: Mapping[str, ColumnElement[Any]] | None = None,
        returning: Sequence[Column[Any]] = (),
    ) -> None:
        """Compile the insert of every column but auto-incremented keys and those in `values`.

        `values` are SQL expressions the database computes (its clock, say); `returning` are
        columns the database gives back for each row.
        """
        fixed = dict(values or {})
        columns = [
            c
            for c in table.columns
            if not (c.primary_key and c.autoincrement is True) and c.key not in fixed
        ]
        stmt = insert(table)
        if fixed:
            stmt = stmt.values(**fixed)
        if returning:
            stmt = stmt.returning(*returning)
        compiled = stmt.compile(
            dialect=dialect,
            column_keys=[c.key for c in columns],
            # Without RETURNING asked for, no implicit RETURNING of the new key either.
            for_executemany=not returning,
        )
        self.table = table
        self.dialect = dialect
        self.sql = compiled.string
        by_key = {c.key: c for c in columns}
        names = list(compiled.positiontup or []) if compiled.positional else list(compiled.params)
        if set(names) != set(by_key):
            raise ValueError(f"{table.name}: the compiled insert binds {names}, not the columns")
        self._positional = compiled.positional
        self._binds: list[tuple[str, Processor | None]] = [
            (name, by_key[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names
        ]
        self._returning = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in returning
        ]

    def parameters(self, obj: object) -> Sequence[Any] | dict[str, Any]:
        """The object's values as the driver takes them: in the statement's order, converted."""
        values = {}
        for key, process in self._binds:
            value = getattr(obj, key)
            values[key] = value if value is None or process is None else process(value)
        return tuple(values.values()) if self._positional else values

    def execute(self, conn: Connection, objects: Sequence[object]) -> list[tuple[Any, ...]]:
        """Insert one row per object on the connection's open transaction.

        Returns the RETURNING values of each row, in the objects' order (none without
        `returning`).
        """
        if not objects:
            return []
        params = [self.parameters(o) for o in objects]
        driver_connection = conn.connection.dbapi_connection
        if driver_connection is None:
            raise RuntimeError("the connection has no open transaction")
        # The driver's own cursor: psycopg's executemany takes `returning`, which PEP 249's lacks.
        cursor: Any = driver_connection.cursor()
        try:
            if len(params) == 1:
                cursor.execute(self.sql, params[0])
                return [self._processed(cursor.fetchone())] if self._returning else []
            if not self._returning:
                cursor.executemany(self.sql, params)
                return []
            if self.dialect.driver == "psycopg":
                # psycopg pipelines the rows: one round trip, each row's RETURNING a result set.
                cursor.executemany(self.sql, params, returning=True)
                rows = [self._processed(cursor.fetchone())]
                while cursor.nextset():
                    rows.append(self._processed(cursor.fetchone()))
                return rows
            rows = []
            for one in params:
                cursor.execute(self.sql, one)
                rows.append(self._processed(cursor.fetchone()))
            return rows
        except self.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                self.sql,
                None,
                exc,
                self.dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=self.dialect,
            ) from exc
        finally:
            cursor.close()

    def _processed(self, row: Sequence[Any] | None) -> tuple[Any, ...]:
        """A RETURNING row converted by its columns' result processors."""
        if row is None:
            raise RuntimeError(f"{self.table.name}: the insert returned no row")
        return tuple(
            value if process is None else process(value)
            for value, process in zip(row, self._returning, strict=True)
        )
