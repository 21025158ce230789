"""SQLite state of the sandbox: one table per model, one JSON document per record.

Only the event loop thread touches it, and no resolver awaits between a read and the write that
depends on it, so conditional writes are atomic without transactions spanning awaits.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

Document = dict[str, Any]
Row = tuple[int, Document]  # (insertion sequence, document)


def _quote(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"not a plain identifier: {name!r}")
    return f'"{name}"'


def _path(field: str) -> str:
    return f"$.{_quote(field)}"


class Store:
    def __init__(self, path: str, models: Mapping[str, Iterable[str]]) -> None:
        """``models`` maps each model name to the fields its indexes query by."""
        self._db = sqlite3.connect(path, isolation_level=None)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sandbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        for model, fields in models.items():
            table = _quote(model)
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} "
                "(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)"
            )
            for field in set(fields):
                self._db.execute(
                    f"CREATE INDEX IF NOT EXISTS {_quote(f'ix_{model}_{field}')} "
                    f"ON {table} (json_extract(doc, '{_path(field)}'))"
                )

    def close(self) -> None:
        self._db.close()

    def get(self, model: str, record_id: str) -> Document | None:
        row = self._db.execute(f"SELECT doc FROM {_quote(model)} WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(self, model: str, doc: Mapping[str, Any]) -> None:
        """Insert or replace; a replaced record keeps its insertion sequence (scan order)."""
        self._db.execute(
            f"INSERT INTO {_quote(model)} (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
            (doc["id"], json.dumps(doc, separators=(",", ":"))),
        )

    def delete(self, model: str, record_id: str) -> None:
        self._db.execute(f"DELETE FROM {_quote(model)} WHERE id = ?", (record_id,))

    def scan(self, model: str) -> list[Row]:
        rows = self._db.execute(f"SELECT seq, doc FROM {_quote(model)} ORDER BY seq").fetchall()
        return [(seq, dict(json.loads(doc))) for seq, doc in rows]

    def query(self, model: str, field: str, value: Any) -> list[Row]:
        rows = self._db.execute(
            f"SELECT seq, doc FROM {_quote(model)} WHERE json_extract(doc, '{_path(field)}') = ? ORDER BY seq",
            (value,),
        ).fetchall()
        return [(seq, dict(json.loads(doc))) for seq, doc in rows]

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM sandbox_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO sandbox_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
