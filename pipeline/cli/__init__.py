"""The `verirag` command line: index, search, ls, stats, delete, drop, collections, models,
ask, review, calibrate, demo, keys, serve, eval.

Exit codes: 0 success; 1 some files failed under --strict; 2 bad input (path, name,
setting, query, dataset); 3 the collection is busy; 4 a model cannot be loaded; 130
interrupted (an eval run resumes from where it stopped).

One module per command group; this one puts them on the root app, in the order `--help`
lists them. The modules import model code inside the commands only, so `verirag --help`
loads no torch.
"""

from __future__ import annotations

import sys

from verirag.pipeline.cli import ask, calibrate, documents, evaluate, keys, models, review, serve
from verirag.pipeline.cli.common import app, err

__all__ = ["app", "main"]

for _command in (
    documents.index,
    documents.search,
    documents.ls,
    documents.stats,
    documents.collections,
    documents.delete,
    documents.drop,
    models.models,
    ask.ask,
    calibrate.calibrate,
    ask.demo,
    serve.serve,
):
    app.command()(_command)
app.add_typer(review.app, name="review")
app.add_typer(keys.app, name="keys")
app.add_typer(evaluate.app, name="eval")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted: completed batches are saved; re-run to finish")
        sys.exit(130)
