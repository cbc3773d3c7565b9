"""`verirag serve`: the HTTP API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from verirag.pipeline.cli.common import DataDirOpt, guard, load_settings


def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers_threads: Annotated[
        int | None,
        typer.Option("--workers-threads", min=1, max=64, help="request worker threads"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    data_dir: DataDirOpt = None,
) -> None:
    """Serve the HTTP API (uvicorn); models load once, in the background (see /readyz)."""
    import uvicorn

    from verirag.pipeline.api import create_app

    settings = load_settings(data_dir=data_dir, api_worker_threads=workers_threads)
    api = guard(lambda: create_app(settings))
    # One process: the models are loaded once and shared by the worker threads.
    uvicorn.run(api, host=host, port=port, log_level=log_level, workers=1)
