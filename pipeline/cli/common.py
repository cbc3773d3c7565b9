"""What every command shares: the root app, the two consoles, the option types, and the
mapping of settings errors and library exceptions to messages and exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from verirag.core.registry import ModelError
from verirag.core.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    name="verirag",
    help="Answers only from your documents, and says when an answer must not be trusted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="collection name")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="only documents with KEY OP VALUE (repeatable, all must hold): "
        "source=docs/*.md, title=Leave policy, year>=2020",
    ),
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="overrides VERIRAG_DATA_DIR", show_default=False)
]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    """The settings with the command's overrides; a bad value exits 2 naming every problem."""
    try:
        return Settings().with_overrides(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid settings: {problems}")
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def guard(fn: Callable[[], T]) -> T:
    """Map the library's exceptions to precise messages and exit codes."""
    # Imported here: the store pulls in faiss, which `verirag --help` should not pay for.
    from verirag.retrievers.loaders import LoadError
    from verirag.retrievers.store import CollectionBusyError, CollectionError

    try:
        return fn()
    except CollectionBusyError as exc:
        fail(str(exc), 3)
    except ModelError as exc:
        fail(str(exc), 4)
    except (CollectionError, LoadError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    except KeyError as exc:
        fail(str(exc.args[0]) if exc.args else "not found")
