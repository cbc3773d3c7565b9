"""`verirag review`: the human review queue of flagged answers."""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from verirag.pipeline.cli.common import DataDirOpt, JsonOpt, guard, load_settings, out

if TYPE_CHECKING:
    from verirag.pipeline.review import ReviewQueue

app = typer.Typer(help="The human review queue of flagged answers.", no_args_is_help=True)


def _queue(data_dir: Path | None) -> ReviewQueue:
    from verirag.pipeline.review import ReviewQueue

    return ReviewQueue(load_settings(data_dir=data_dir).data_dir / "review.sqlite")


@app.command("list")
def review_list(
    status: Annotated[str, typer.Option(help="open | resolved | all")] = "open",
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    reason: Annotated[str | None, typer.Option(help="the decision reason contains this")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """List review items (newest first)."""
    items = _queue(data_dir).list(
        None if status == "all" else status, [collection] if collection else None, limit, reason
    )
    if as_json:
        out.print_json(
            json.dumps([{k: v for k, v in asdict(i).items() if k != "answer"} for i in items])
        )
        return
    table = Table("id", "status", "collection", "question", "reason", box=None)
    for item in items:
        table.add_row(
            str(item.id),
            item.resolution or item.status,
            item.collection,
            item.question[:50],
            item.decision_reason[:40],
        )
    out.print(table)


@app.command("show")
def review_show(
    item_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False, data_dir: DataDirOpt = None
) -> None:
    """Show one review item with its answer, flags and sources."""
    item = guard(lambda: _queue(data_dir).get(item_id))
    if as_json:
        out.print_json(json.dumps(asdict(item), default=str))
        return
    out.print(f"[bold]#{item.id}[/] {item.status} {item.resolution or ''} · {item.collection}")
    out.print(f"[bold]Q:[/] {item.question}\n[bold]A:[/] {item.answer_text}")
    for claim in item.answer.get("claims", []):
        out.print(f"  {claim['verdict']}: {claim['text']} [dim]({claim['reason']})[/]")
    for c in item.answer.get("citations", []):
        out.print(f"  [{c['number']}] {c['title']} {c['source']}")
    if item.note:
        out.print(f"note: {item.note}")


@app.command("resolve")
def review_resolve(
    item_id: Annotated[int, typer.Argument()],
    resolution: Annotated[
        str, typer.Option(help="correct | incorrect | partially-correct | corrected")
    ],
    note: Annotated[str, typer.Option(help="what the reviewer found")] = "",
    corrected_text: Annotated[
        str | None, typer.Option("--corrected-text", help="the right answer (for 'corrected')")
    ] = None,
    by: Annotated[str | None, typer.Option(help="who resolves it (default: the OS user)")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Record a reviewer's verdict on a flagged answer."""
    reviewer = by if by is not None else getpass.getuser()
    item = guard(
        lambda: _queue(data_dir).resolve(
            item_id, resolution, note, resolved_by=reviewer, corrected_text=corrected_text
        )
    )
    out.print(f"#{item.id} resolved as {item.resolution} by {item.resolved_by}")


@app.command("export")
def review_export(
    output: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write")],
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Resolved items as JSON Lines: labelled data for calibration (oldest first)."""
    items = _queue(data_dir).resolved([collection] if collection else None)
    with output.open("w", encoding="utf-8") as sink:
        for item in items:
            sink.write(json.dumps(item.labelled(), ensure_ascii=False) + "\n")
    out.print(f"{len(items)} resolved items written to {output}")
