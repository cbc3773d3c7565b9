"""`verirag keys`: create, list and revoke the HTTP API's keys."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from verirag.pipeline.cli.common import (
    DataDirOpt,
    JsonOpt,
    err,
    fail,
    guard,
    load_settings,
    out,
)

if TYPE_CHECKING:
    from verirag.pipeline.api.keys import KeyStore

app = typer.Typer(help="API keys for the HTTP API (`verirag serve`).", no_args_is_help=True)


def _key_store(data_dir: Path | None) -> KeyStore:
    from verirag.pipeline.api.keys import KeyStore

    return KeyStore.for_data_dir(load_settings(data_dir=data_dir).data_dir)


@app.command("create")
def keys_create(
    collections: Annotated[
        str, typer.Option(help="comma-separated collection names, or '*' for all")
    ],
    scope: Annotated[
        str, typer.Option(help="read (ask, list) | write (+ upload, delete, review) | admin")
    ] = "read",
    name: Annotated[str, typer.Option(help="a label to recognise the key by")] = "",
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an API key. The key is printed once; only its hash is stored."""
    from verirag.pipeline.api.keys import KeySpecError

    try:
        key, secret = _key_store(data_dir).create(collections, scope, name)
    except KeySpecError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps({**asdict(key), "key": secret}))
        return
    out.print(secret, markup=False)
    err.print(
        f"key #{key.id} ({key.scope}; collections: {', '.join(key.collections)}) created; "
        "store it now, it cannot be shown again"
    )


@app.command("list")
def keys_list(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    """List API keys (id, name, scope, collections, revoked); never the keys themselves."""
    keys = _key_store(data_dir).list()
    if as_json:
        out.print_json(json.dumps([asdict(k) for k in keys]))
        return
    table = Table("id", "name", "prefix", "scope", "collections", "created", "revoked", box=None)
    for k in keys:
        table.add_row(
            str(k.id),
            k.name,
            k.prefix + "…",
            k.scope,
            ",".join(k.collections),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created_at)),
            "yes" if k.revoked else "",
        )
    out.print(table)


@app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="the key's id (see `verirag keys list`)")],
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke an API key: requests with it get 401 from then on."""
    key = guard(lambda: _key_store(data_dir).revoke(key_id))
    out.print(f"key #{key.id} revoked")
