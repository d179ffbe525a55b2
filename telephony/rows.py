"""Rows of a hot path written and read in one statement per batch, past the ORM's per-row work.

The fold writes hundreds of call records and webhook deliveries a batch. Through the ORM each
value of each row is prepared field by field (`get_db_prep_save`), each query compiled anew and
each row read back through `Model.__init__`: most of the fold's time, more than the database's.
Here a statement's text is built once, the same for any number of rows, values are adapted per
column only where the database needs it (a time on SQLite, JSON), and rows read are made into
instances directly.

One statement per batch and table, on PostgreSQL and SQLite alike (3.33+ for UPDATE ... FROM,
3.35+ for RETURNING; Django 5.2 runs on 3.31, where an UPDATE goes a row at a time in one
executemany and webhooks.py inserts deliveries with bulk_create).
"""

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence

from django.db import connection, models
from django.db.models.base import ModelState


def _identity(value):
    return value


def _adapter(field: models.Field) -> Callable:
    """What a value of `field` becomes for this database: only times (SQLite stores them as naive
    text in the connection's zone, as Django does) and JSON need anything."""
    if isinstance(field, models.JSONField):
        encoder = field.encoder
        return lambda value: json.dumps(value, cls=encoder)
    if isinstance(field, models.DateTimeField) and connection.vendor == "sqlite":
        zone = connection.timezone
        return lambda value: None if value is None else str(value.astimezone(zone).replace(tzinfo=None))
    return _identity


def _reader(field: models.Field) -> Callable | None:
    """What a value read back needs: SQLite's converter hands naive times (in the connection's zone)."""
    if isinstance(field, models.DateTimeField) and connection.vendor == "sqlite":
        zone = connection.timezone
        return lambda value: None if value is None else value.replace(tzinfo=zone)
    return None


def _pg_type(field: models.Field) -> str:
    # text for the char columns: assigned to varchar(n), too long a value is refused, never cut.
    if isinstance(field, models.CharField):
        return "text"
    return field.db_type(connection)


def one_of(column: str, values: Iterable[str]) -> tuple[str, list]:
    """SQL (and its one parameter) for a text `column` holding one of `values`, the same text
    for any number of values (see Rows._statement): an array on PostgreSQL, JSON on SQLite."""
    quoted = connection.ops.quote_name(column)
    if connection.vendor == "postgresql":
        return f"{quoted} = ANY(%s::text[])", [list(values)]
    return f"{quoted} IN (SELECT value FROM json_each(%s))", [json.dumps(list(values))]


def rows_of(model: type[models.Model], names: Sequence[str]) -> "Rows":
    """The Rows of `model`'s fields `names` for the default database, made once."""
    return _rows_of(model, tuple(names), connection.vendor)


@functools.cache
def _rows_of(model, names, vendor):
    return Rows(model, names)


class Rows:
    """One model's columns (by field name) for statements of many rows at a time."""

    def __init__(self, model: type[models.Model], names: Sequence[str]):
        self.model = model
        self.fields = [model._meta.get_field(name) for name in names]
        self.attnames = [f.attname for f in self.fields]
        quote = connection.ops.quote_name
        self.table = quote(model._meta.db_table)
        self.columns = [quote(f.column) for f in self.fields]
        self.adapters = [_adapter(f) for f in self.fields]
        self.plain = all(a is _identity for a in self.adapters)

    def values(self, objects: Iterable) -> list[list]:
        """The rows of `objects` (instances, or anything with the fields' attnames), adapted."""
        getters = list(zip(self.attnames, self.adapters, strict=True))
        if self.plain:
            return [[getattr(o, name) for name in self.attnames] for o in objects]
        return [[adapt(getattr(o, name)) for name, adapt in getters] for o in objects]

    def adapt(self, rows: Iterable[Sequence]) -> list[list]:
        """Rows of plain values in the fields' order, adapted."""
        if self.plain:
            return [list(row) for row in rows]
        return [[adapt(value) for adapt, value in zip(self.adapters, row, strict=True)] for row in rows]

    def insert(self, rows: list[list], *, ignore_conflicts: bool = False, returning: str = "") -> list:
        """INSERT the adapted rows in one statement; the `returning` column's values when asked
        (none for the rows an ignored conflict skipped)."""
        if not rows:
            return []
        tail = (" ON CONFLICT DO NOTHING" if ignore_conflicts else "") + (
            f" RETURNING {connection.ops.quote_name(returning)}" if returning else ""
        )
        head = f"INSERT INTO {self.table} ({', '.join(self.columns)}) "
        with connection.cursor() as cursor:
            cursor.execute(*self._statement(rows, head, tail, self.fields))
            return [row[0] for row in cursor.fetchall()] if returning else []

    def update(self, rows: list[list], *, key: str = "id"):
        """UPDATE the rows whose `key` is each row's first value with the rest, in one statement:
        UPDATE ... FROM the rows as a table."""
        if not rows:
            return
        quote = connection.ops.quote_name
        names = [quote(key), *self.columns]
        if connection.vendor == "sqlite" and sqlite3.sqlite_version_info < (3, 33):
            sets = ", ".join(f"{c} = %s" for c in self.columns)
            sql = f"UPDATE {self.table} SET {sets} WHERE {names[0]} = %s"
            with connection.cursor() as cursor:
                cursor.executemany(sql, [[*row[1:], row[0]] for row in rows])
            return
        sets = ", ".join(f"{c} = v.{c}" for c in self.columns)
        where = f"WHERE {self.table}.{names[0]} = v.{names[0]}"
        fields = [self.model._meta.get_field(key), *self.fields]
        with connection.cursor() as cursor:
            cursor.execute(
                *self._statement(rows, f"UPDATE {self.table} SET {sets} FROM ", where, fields, names)
            )

    def _statement(self, rows: list[list], head: str, tail: str, fields: list, names: list | None = None):
        """(sql, params) of `head` <the rows as a table> `tail`, one statement whatever the number
        of rows, its text the same for any batch. PostgreSQL: unnest() of one typed array a column
        (psycopg parses a query of thousands of placeholders anew each time: 8 µs each, more than
        the write). SQLite: json_each() of the rows as one JSON array. A VALUES list of a
        placeholder a value made a new statement for each number of rows, and the sqlite3 module
        keeps its last 128 statements compiled, per connection: the pbx process grew by 50 MiB."""
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{_pg_type(f)}[]" for f in fields)
            table = f"unnest({arrays})" + (f" AS v ({', '.join(names)}) " if names else " ")
            return (
                f"{head}{'' if names else 'SELECT * FROM '}{table}{tail}",
                [list(c) for c in zip(*rows, strict=True)],
            )
        columns = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(fields)))
        table = f"SELECT {columns} FROM json_each(%s)"
        if names:
            sql = f"WITH v ({', '.join(names)}) AS ({table}) {head}v {tail}"
        else:
            # WHERE true: an INSERT ... SELECT before ON CONFLICT needs a WHERE, or SQLite reads the
            # ON as a join's.
            sql = f"{head}{table} WHERE true{tail}"
        return sql, [json.dumps(rows)]

    def select(self, where: str, params: Sequence, *, lock: bool = False) -> list[models.Model]:
        """Instances of the rows matching `where` (SQL over this table's columns), with the fields
        given at construction loaded (the model's concrete fields, for an instance to save or
        snapshot); FOR UPDATE on PostgreSQL when `lock` (SQLite's transaction holds the database)."""
        sql = f"SELECT {', '.join(self.columns)} FROM {self.table} WHERE {where}"
        if lock and connection.vendor == "postgresql":
            sql += " FOR UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        readers = [(i, r) for i, r in enumerate(map(_reader, self.fields)) if r is not None]
        return [self._instance(row, readers) for row in fetched]

    def _instance(self, row: Sequence, readers: list) -> models.Model:
        if readers:
            row = list(row)
            for i, read in readers:
                row[i] = read(row[i])
        # What Model.from_db makes, without __init__'s per-field walk (the columns are every
        # concrete field, so no field is left deferred).
        instance = self.model.__new__(self.model)
        instance.__dict__.update(zip(self.attnames, row, strict=True))
        instance._state = ModelState()
        instance._state.adding = False
        instance._state.db = connection.alias
        return instance
