"""API keys: hashed at rest, scopes, collections, revocation, and the `verirag keys` CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from verirag.pipeline.api.keys import KeySpecError, KeyStore
from verirag.pipeline.cli import app


def test_only_the_hash_is_stored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    key, secret = store.create("a,b", "write", "ci")
    assert secret.startswith("vrag_") and len(secret) > 40
    assert key.collections == ("a", "b") and key.scope == "write" and not key.revoked
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert secret.encode() not in raw
    assert secret[len(key.prefix) :].encode() not in raw


def test_authenticate_and_revoke(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    key, secret = store.create(["a"], "read")
    other, _ = store.create("*", "admin")
    assert store.authenticate(secret) == key
    assert store.authenticate(secret + "x") is None
    assert store.authenticate("") is None and store.authenticate("vrag_" + "a" * 300) is None
    assert store.revoke(key.id).revoked
    assert store.authenticate(secret) is None
    assert [k.id for k in store.list()] == [key.id, other.id]
    with pytest.raises(KeyError):
        store.revoke(999)


def test_scopes_and_coverage(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    reader, _ = store.create("a", "read")
    writer, _ = store.create("a", "write")
    star, _ = store.create("*", "read")
    admin, _ = store.create("a", "admin")
    assert reader.allows("read") and not reader.allows("write")
    assert writer.allows("write") and not writer.allows("admin")
    assert admin.allows("admin") and admin.covers("zzz")  # admin: every collection
    assert reader.covers("a") and not reader.covers("b")
    assert star.covers("b") and not star.allows("write")


@pytest.mark.parametrize(
    ("collections", "scope", "needle"),
    [("a", "owner", "scope"), ("", "read", "at least one"), ("../x", "read", "invalid")],
)
def test_bad_key_specs_are_refused(
    tmp_path: Path, collections: str, scope: str, needle: str
) -> None:
    with pytest.raises(KeySpecError, match=needle):
        KeyStore(tmp_path / "keys.sqlite").create(collections, scope)


def test_keys_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--collections", "a,b", "--scope", "write"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    assert secret.startswith("vrag_")
    listed = runner.invoke(app, ["keys", "list", "--json"])
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    assert rows[0]["collections"] == ["a", "b"] and secret not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", str(rows[0]["id"])]).exit_code == 0
    store = KeyStore.for_data_dir(tmp_path / "data")
    assert store.authenticate(secret) is None
    bad = runner.invoke(app, ["keys", "create", "--collections", "a", "--scope", "root"])
    assert bad.exit_code == 2
    assert runner.invoke(app, ["keys", "revoke", "42"]).exit_code == 2


def test_serve_runs_uvicorn_on_the_app_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}

    def fake_run(api: Any, **kwargs: Any) -> None:
        seen.update(kwargs, app=api)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(
        app, ["serve", "--port", "8123", "--workers-threads", "3", "--host", "127.0.0.1"]
    )
    assert result.exit_code == 0, result.output
    assert seen["port"] == 8123 and seen["host"] == "127.0.0.1"
    services = seen["app"].state.services
    assert services.pool.workers == 3
    services.close()
