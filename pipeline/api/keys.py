"""API keys for the HTTP API: SQLite at `<data_dir>/keys.sqlite`, only hashes stored.

A key is 32 random bytes from `secrets`, so one sha256 (no salt, no slow KDF) is enough: it
cannot be brute-forced, and a leaked database holds nothing a client could send.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from verirag.core.db import connect
from verirag.retrievers.store import validate_name

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
ALL_COLLECTIONS = "*"
KEY_PREFIX = "vrag_"
_RANK = {scope: i for i, scope in enumerate(SCOPES)}


class KeySpecError(ValueError):
    """A key cannot be created as asked (bad scope, bad collection name)."""


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str  # the first characters of the key, to tell keys apart in listings
    collections: tuple[str, ...]
    scope: Scope
    created_at: float
    revoked: bool

    def allows(self, needed: Scope) -> bool:
        return _RANK[self.scope] >= _RANK[needed]

    @property
    def all_collections(self) -> bool:
        return self.scope == "admin" or ALL_COLLECTIONS in self.collections

    def covers(self, collection: str) -> bool:
        return self.all_collections or collection in self.collections


def parse_collections(raw: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    names = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not names:
        raise KeySpecError("a key needs at least one collection (or '*' for all)")
    for name in names:
        if name != ALL_COLLECTIONS:
            try:
                validate_name(name)
            except ValueError as exc:
                raise KeySpecError(str(exc)) from exc
    return names


class KeyStore:
    """Thread-safe; every method is one short SQLite statement."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "name TEXT NOT NULL, prefix TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, "
            "collections TEXT NOT NULL, scope TEXT NOT NULL, created_at REAL NOT NULL, "
            "revoked INTEGER NOT NULL DEFAULT 0, revoked_at REAL)"
        )

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> KeyStore:
        return cls(data_dir / "keys.sqlite")

    def create(
        self, collections: str | list[str] | tuple[str, ...], scope: str, name: str = ""
    ) -> tuple[ApiKey, str]:
        """A new key; the secret is returned once and never stored."""
        if scope not in SCOPES:
            raise KeySpecError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        names = parse_collections(collections)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        prefix = secret[: len(KEY_PREFIX) + 6]
        with self._lock:
            cur = self.db.execute(
                "INSERT INTO api_keys(name, prefix, key_hash, collections, scope, created_at) "
                "VALUES (?,?,?,?,?,?)",
                (name, prefix, hash_key(secret), json.dumps(list(names)), scope, time.time()),
            )
            assert cur.lastrowid is not None
            key_id = int(cur.lastrowid)
        return self.get(key_id), secret

    _COLUMNS = "id, name, prefix, collections, scope, created_at, revoked, key_hash"

    def _key(self, row: tuple[Any, ...]) -> ApiKey:
        return ApiKey(
            id=int(row[0]),
            name=str(row[1]),
            prefix=str(row[2]),
            collections=tuple(json.loads(row[3])),
            scope=cast(Scope, row[4]),
            created_at=float(row[5]),
            revoked=bool(row[6]),
        )

    def get(self, key_id: int) -> ApiKey:
        row = self.db.execute(
            f"SELECT {self._COLUMNS} FROM api_keys WHERE id=?", (key_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no API key with id {key_id}")
        return self._key(row)

    def list(self) -> list[ApiKey]:
        return [
            self._key(r)
            for r in self.db.execute(f"SELECT {self._COLUMNS} FROM api_keys ORDER BY id")
        ]

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key for `secret`, or None (unknown or revoked)."""
        if not secret.startswith(KEY_PREFIX) or len(secret) > 256:
            return None
        digest = hash_key(secret)
        row = self.db.execute(
            f"SELECT {self._COLUMNS} FROM api_keys WHERE key_hash=?", (digest,)
        ).fetchone()
        # The lookup already matched, but compare in constant time anyway so that no code
        # path ever decides on a secret with an early-exit comparison.
        if row is None or not hmac.compare_digest(str(row[7]), digest):
            return None
        key = self._key(row)
        return None if key.revoked else key

    def revoke(self, key_id: int) -> ApiKey:
        self.get(key_id)
        with self._lock:
            self.db.execute(
                "UPDATE api_keys SET revoked=1, revoked_at=? WHERE id=?", (time.time(), key_id)
            )
        return self.get(key_id)

    def close(self) -> None:
        self.db.close()
