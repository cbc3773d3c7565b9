"""Commands over collections: index, search, ls, stats, collections, delete, drop."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from verirag.core.records import IndexReport, SearchHit
from verirag.pipeline.cli.common import (
    CollectionOpt,
    DataDirOpt,
    FilterOpt,
    JsonOpt,
    err,
    guard,
    load_settings,
    out,
)


class SearchModeOpt(StrEnum):
    hybrid = "hybrid"
    dense = "dense"
    bm25 = "bm25"
    splade = "splade"


def index(
    paths: Annotated[list[Path], typer.Argument(help="files and directories (recursive)")],
    collection: CollectionOpt = "default",
    include: Annotated[list[str] | None, typer.Option(help="glob to include (repeatable)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="glob to exclude (repeatable)")] = None,
    prune: Annotated[bool, typer.Option(help="remove documents whose source is gone")] = False,
    strict: Annotated[bool, typer.Option(help="exit 1 if any file failed")] = False,
    index_type: Annotated[
        str | None, typer.Option(help="flat (exact, default) | hnsw | ivfpq")
    ] = None,
    vector_backend: Annotated[
        str | None, typer.Option(help="faiss (files, default) | milvus: a Milvus server")
    ] = None,
    vector_uri: Annotated[
        str | None, typer.Option(help="the Milvus server, e.g. http://127.0.0.1:19530")
    ] = None,
    embedder: Annotated[str | None, typer.Option(help="registry name, path or hub id")] = None,
    splade_model: Annotated[
        str | None,
        typer.Option(
            help="learned sparse side of hybrid retrieval: splade-tiny (default), a path, or "
            "'' for none; on an existing collection, adds, changes or removes it"
        ),
    ] = None,
    embed_backend: Annotated[
        str | None, typer.Option(help="torch (default) | int8 (fast CPU path)")
    ] = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="chunk size in tokens")] = None,
    chunk_overlap: Annotated[int | None, typer.Option(help="overlap in tokens")] = None,
    engine: Annotated[
        str | None, typer.Option(help="local (default) | ray: Ray Data workers and actors")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: a local Ray instance)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Index documents (.txt .md .rst .html .pdf .docx .jsonl) into a collection."""
    settings = load_settings(
        data_dir=data_dir,
        index_engine=engine,
        ray_address=ray_address,
        index_type=index_type,
        vector_backend=vector_backend,
        vector_uri=vector_uri,
        embedder=embedder,
        splade_model=splade_model,
        embed_backend=embed_backend,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
    )
    from verirag.pipeline.indexing import IndexingPipeline

    pipeline = IndexingPipeline(settings)
    show_bar = progress and not as_json and err.is_terminal

    def run() -> IndexReport:
        def index_with(update: Any) -> IndexReport:
            return pipeline.run(
                paths,
                collection,
                include=include,
                exclude=exclude,
                prune=prune,
                change_index=any(o is not None for o in (index_type, vector_backend, splade_model)),
                progress=update,
            )

        if not show_bar:
            return index_with(None)
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]indexing"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("files · {task.fields[rate]}"),
            TimeElapsedColumn(),
            console=err,
        ) as bar:
            task = bar.add_task("index", total=None, rate="")

            def update(p: Any) -> None:
                secs = max(p.elapsed, 1e-9)
                bar.update(
                    task,
                    total=p.files_total,
                    completed=p.files_done,
                    rate=f"{p.docs / secs:.1f} docs/s · {p.chunks / secs:.1f} chunks/s",
                )

            return index_with(update)

    report = guard(run)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        print_report(report)
    if strict and report.failed:
        raise typer.Exit(1)


def print_report(report: IndexReport) -> None:
    rate = report.chunks_added / report.seconds if report.seconds else 0.0
    out.print(
        f"collection [bold]{report.collection}[/]: {report.added} added, {report.updated} "
        f"updated, {report.unchanged} unchanged, {report.failed} failed, {report.pruned} pruned; "
        f"{report.chunks_added} chunks embedded, {report.chunks_removed} removed in "
        f"{report.seconds:.1f}s ({rate:.1f} chunks/s)"
    )
    for failure in report.failures:
        out.print(f"  [yellow]skipped[/] {failure.source}: {failure.reason}")


def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    collection: CollectionOpt = "default",
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="results")] = 5,
    mode: Annotated[
        SearchModeOpt,
        typer.Option(help="hybrid (every side fused, default) | dense | bm25 | splade"),
    ] = SearchModeOpt.hybrid,
    rerank: Annotated[
        bool | None,
        typer.Option(
            "--rerank/--no-rerank",
            help="order the fused candidates again with the reranker (hybrid mode; default: "
            "the rerank setting)",
        ),
    ] = None,
    filters: FilterOpt = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Print the top-k chunks for a query, with scores and sources."""
    settings = load_settings(data_dir=data_dir)
    from verirag.pipeline.rag import RagPipeline
    from verirag.retrievers.filters import parse_filters

    rag = RagPipeline(settings)
    where = guard(lambda: parse_filters(filters))
    hits: list[SearchHit] = guard(
        lambda: rag.search(query, collection, k, mode=mode.value, where=where, rerank=rerank)
    )
    if as_json:
        out.print_json(json.dumps([asdict(h) for h in hits]))
        return
    if not hits:
        out.print(f"collection '{collection}' is empty: nothing to search")
        return
    for hit in hits:
        print_hit(hit)


def print_hit(hit: SearchHit) -> None:
    where = hit.source
    if hit.pages:
        where += f" p.{hit.pages[0]}" + (f"-{hit.pages[1]}" if hit.pages[1] != hit.pages[0] else "")
    heading = " > ".join(hit.headings)
    out.print(
        f"[bold][{hit.rank}][/] {hit.score:.3f}  [cyan]{hit.title}[/]"
        + (f" › {heading}" if heading else "")
    )
    out.print(f"    {where} [dim]chars {hit.start}-{hit.end}[/]")
    snippet = " ".join(hit.text.split())
    out.print(f"    {snippet[:300]}{'…' if len(snippet) > 300 else ''}")


def ls(
    collection: CollectionOpt = "default",
    limit: Annotated[int | None, typer.Option(help="at most this many")] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """List the documents of a collection."""
    from verirag.retrievers.store import FaissStore, validate_name

    settings = load_settings(data_dir=data_dir)
    store = guard(lambda: FaissStore(settings.collections_dir / validate_name(collection)))
    try:
        docs = store.documents(limit=limit)
    finally:
        store.close()
    if as_json:
        out.print_json(json.dumps([asdict(d) for d in docs]))
        return
    table = Table("id", "title", "chunks", "source", box=None)
    for doc in docs:
        table.add_row(doc.doc_id, doc.title[:40], str(doc.n_chunks), doc.source)
    out.print(table)


def stats(
    collection: CollectionOpt = "default", as_json: JsonOpt = False, data_dir: DataDirOpt = None
) -> None:
    """Documents, chunks, vectors, model and index type of a collection."""
    from verirag.pipeline.calibrations import CollectionCalibrations, describe
    from verirag.retrievers.store import FaissStore, validate_name

    settings = load_settings(data_dir=data_dir)
    store = guard(lambda: FaissStore(settings.collections_dir / validate_name(collection)))
    try:
        result = store.stats()
    finally:
        store.close()
    own = guard(lambda: CollectionCalibrations(settings.collections_dir).get(collection))
    shown = {
        **asdict(result),
        "calibration": describe(own, "its own") if own else "none of its own (the shipped one)",
    }
    if as_json:
        out.print_json(json.dumps(shown))
        return
    for key, value in shown.items():
        out.print(f"{key:>14}: {value}")


def collections(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    """List collections."""
    from verirag.retrievers.store import list_collections

    names = list_collections(load_settings(data_dir=data_dir).collections_dir)
    if as_json:
        out.print_json(json.dumps(names))
    else:
        for name in names:
            out.print(name)


def delete(
    refs: Annotated[list[str], typer.Argument(help="document ids, sources or file paths")],
    collection: CollectionOpt = "default",
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete documents by id or path (a directory deletes everything under it)."""
    from verirag.pipeline.indexing import IndexingPipeline

    pipeline = IndexingPipeline(load_settings(data_dir=data_dir))
    deleted: list[tuple[str, str]] = guard(lambda: pipeline.delete(collection, refs))
    if as_json:
        out.print_json(json.dumps([{"doc_id": d, "source": s} for d, s in deleted]))
    else:
        out.print(f"deleted {len(deleted)} document(s) from '{collection}'")


def drop(
    collection: Annotated[str, typer.Argument(help="collection to remove")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a whole collection from disk."""
    from verirag.pipeline.indexing import IndexingPipeline

    settings = load_settings(data_dir=data_dir)
    if not yes and not typer.confirm(f"remove collection '{collection}' and all its data?"):
        raise typer.Exit(1)
    reviews = guard(lambda: IndexingPipeline(settings).drop(collection))
    out.print(f"dropped '{collection}'" + (f" and {reviews} review item(s)" if reviews else ""))
