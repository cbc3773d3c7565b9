"""The `verirag` command line: index, search, ls, stats, delete, drop, collections, models,
ask, review, calibrate, demo, keys, serve, eval.

Exit codes: 0 success; 1 some files failed under --strict; 2 bad input (path, name,
setting, query, dataset); 3 the collection is busy; 4 a model cannot be loaded; 130
interrupted (an eval run resumes from where it stopped).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from verirag.core.records import Answer, IndexReport, SearchHit
from verirag.core.registry import REGISTRY, ModelError, resolve_model
from verirag.core.settings import Settings

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
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="overrides VERIRAG_DATA_DIR", show_default=False)
]


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings().with_overrides(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        _fail(f"invalid settings: {problems}")
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


def _guard(fn: Any) -> Any:
    """Map the library's exceptions to precise messages and exit codes."""
    from verirag.retrievers.loaders import LoadError
    from verirag.retrievers.store import CollectionBusyError, CollectionError

    try:
        return fn()
    except CollectionBusyError as exc:
        _fail(str(exc), 3)
    except ModelError as exc:
        _fail(str(exc), 4)
    except (CollectionError, LoadError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    except KeyError as exc:
        _fail(str(exc.args[0]) if exc.args else "not found")


@app.command()
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
    embedder: Annotated[str | None, typer.Option(help="registry name, path or hub id")] = None,
    embed_backend: Annotated[
        str | None, typer.Option(help="torch (default) | int8 (fast CPU path)")
    ] = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="chunk size in tokens")] = None,
    chunk_overlap: Annotated[int | None, typer.Option(help="overlap in tokens")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Index documents (.txt .md .rst .html .pdf .docx .jsonl) into a collection."""
    settings = _settings(
        data_dir=data_dir,
        index_type=index_type,
        embedder=embedder,
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
                change_index=index_type is not None,
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

    report: IndexReport = _guard(run)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        _print_report(report)
    if strict and report.failed:
        raise typer.Exit(1)


def _print_report(report: IndexReport) -> None:
    rate = report.chunks_added / report.seconds if report.seconds else 0.0
    out.print(
        f"collection [bold]{report.collection}[/]: {report.added} added, {report.updated} "
        f"updated, {report.unchanged} unchanged, {report.failed} failed, {report.pruned} pruned; "
        f"{report.chunks_added} chunks embedded, {report.chunks_removed} removed in "
        f"{report.seconds:.1f}s ({rate:.1f} chunks/s)"
    )
    for failure in report.failures:
        out.print(f"  [yellow]skipped[/] {failure.source}: {failure.reason}")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    collection: CollectionOpt = "default",
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="results")] = 5,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Print the top-k chunks for a query, with scores and sources."""
    settings = _settings(data_dir=data_dir)
    from verirag.pipeline.rag import RagPipeline

    rag = RagPipeline(settings)
    hits: list[SearchHit] = _guard(lambda: rag.search(query, collection, k))
    if as_json:
        out.print_json(json.dumps([asdict(h) for h in hits]))
        return
    if not hits:
        out.print(f"collection '{collection}' is empty: nothing to search")
        return
    for hit in hits:
        _print_hit(hit)


def _print_hit(hit: SearchHit) -> None:
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


@app.command()
def ls(
    collection: CollectionOpt = "default",
    limit: Annotated[int | None, typer.Option(help="at most this many")] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """List the documents of a collection."""
    from verirag.retrievers.store import FaissStore, validate_name

    settings = _settings(data_dir=data_dir)
    store = _guard(lambda: FaissStore(settings.collections_dir / validate_name(collection)))
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


@app.command()
def stats(
    collection: CollectionOpt = "default", as_json: JsonOpt = False, data_dir: DataDirOpt = None
) -> None:
    """Documents, chunks, vectors, model and index type of a collection."""
    from verirag.retrievers.store import FaissStore, validate_name

    settings = _settings(data_dir=data_dir)
    store = _guard(lambda: FaissStore(settings.collections_dir / validate_name(collection)))
    try:
        result = store.stats()
    finally:
        store.close()
    if as_json:
        out.print_json(json.dumps(asdict(result)))
        return
    for key, value in asdict(result).items():
        out.print(f"{key:>14}: {value}")


@app.command()
def collections(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    """List collections."""
    from verirag.retrievers.store import list_collections

    names = list_collections(_settings(data_dir=data_dir).collections_dir)
    if as_json:
        out.print_json(json.dumps(names))
    else:
        for name in names:
            out.print(name)


@app.command()
def delete(
    refs: Annotated[list[str], typer.Argument(help="document ids, sources or file paths")],
    collection: CollectionOpt = "default",
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete documents by id or path (a directory deletes everything under it)."""
    from verirag.pipeline.indexing import IndexingPipeline

    pipeline = IndexingPipeline(_settings(data_dir=data_dir))
    deleted: list[tuple[str, str]] = _guard(lambda: pipeline.delete(collection, refs))
    if as_json:
        out.print_json(json.dumps([{"doc_id": d, "source": s} for d, s in deleted]))
    else:
        out.print(f"deleted {len(deleted)} document(s) from '{collection}'")


@app.command()
def drop(
    collection: Annotated[str, typer.Argument(help="collection to remove")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a whole collection from disk."""
    from verirag.retrievers.store import drop_collection

    settings = _settings(data_dir=data_dir)
    if not yes and not typer.confirm(f"remove collection '{collection}' and all its data?"):
        raise typer.Exit(1)
    _guard(lambda: drop_collection(settings.collections_dir, collection))
    out.print(f"dropped '{collection}'")


@app.command()
def models(
    verify: Annotated[bool, typer.Option(help="resolve and sha256-check every model")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """The bundled models: name, role, package, licence (and whether each resolves)."""
    settings = _settings(data_dir=data_dir)
    table = Table("name", "kind", "model", "licence", *(["status"] if verify else []), box=None)
    bad = 0
    for model in REGISTRY.values():
        row = [model.name, model.kind, model.title, model.licence]
        if verify:
            try:
                resolve_model(model.name, settings.models_dir)
                row.append("[green]ok[/]")
            except ModelError as exc:
                bad += 1
                row.append(f"[red]{exc}[/]")
        table.add_row(*row)
    out.print(table)
    if bad:
        raise typer.Exit(4)


def _print_answer(answer: Answer, streamed: bool) -> None:
    colour = {"answer": "green", "review": "yellow", "abstain": "red"}[answer.decision]
    if not streamed:
        out.print(f"\n{answer.text}")
    out.print(
        f"\n[bold {colour}]{answer.decision.upper()}[/] — {answer.decision_reason} · "
        f"confidence {answer.confidence:.2f}"
        + (f" · review #{answer.review_id}" if answer.review_id is not None else "")
    )
    for claim in answer.flagged:
        out.print(f"  [bold yellow]⚑ {claim.verdict}[/]: {claim.text}\n    [dim]{claim.reason}[/]")
    if answer.citations:
        out.print("\n[bold]sources[/]")
    for c in answer.citations:
        snippet = " ".join(c.snippet.split())
        out.print(f"  [{c.number}] [cyan]{c.title}[/] {c.source} [dim]chars {c.start}-{c.end}[/]")
        out.print(f"      {snippet[:200]}{'…' if len(snippet) > 200 else ''}")
    t = answer.timings
    out.print(
        f"\n[dim]{answer.generator} · retrieve {t.retrieve:.1f}s · generate {t.generate:.1f}s "
        f"({t.decode_tokens_per_second:.0f} tok/s) · verify {t.verify:.1f}s · "
        f"total {t.total:.1f}s[/]"
    )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question")],
    collection: CollectionOpt = "default",
    k: Annotated[int | None, typer.Option("--k", "-k", help="chunks to retrieve")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="answer length limit")] = None,
    temperature: Annotated[float, typer.Option(help="0 = greedy (QA default)")] = 0.0,
    top_p: Annotated[float, typer.Option(help="nucleus sampling")] = 1.0,
    top_k: Annotated[int, typer.Option(help="0 = off")] = 0,
    frequency_penalty: Annotated[float, typer.Option()] = 0.0,
    presence_penalty: Annotated[float, typer.Option()] = 0.0,
    stop: Annotated[list[str] | None, typer.Option(help="stop string (repeatable)")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    generator: Annotated[str | None, typer.Option(help="registry name, path or hub id")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="print tokens as they come")] = False,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Answer a question from a collection, with citations, claim checks and a decision."""
    from verirag.generators.base import GenerationError, GenerationParams
    from verirag.pipeline.rag import RagPipeline

    settings = _settings(data_dir=data_dir, generator=generator)
    try:
        params = GenerationParams(
            max_tokens=max_tokens or settings.max_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            stop=tuple(stop or ()),
            seed=seed,
        )
    except GenerationError as exc:
        _fail(f"invalid generation parameters: {exc}")
    rag = RagPipeline(settings)
    if stream and not as_json:
        out.print()

    def on_token(piece: str) -> None:
        out.print(piece, end="", markup=False, highlight=False)

    answer: Answer = _guard(
        lambda: rag.ask(
            question, collection, k, params, on_token if stream and not as_json else None
        )
    )
    if as_json:
        out.print_json(json.dumps(asdict(answer), default=str))
        return
    if stream:
        out.print()
    _print_answer(answer, streamed=stream)


review_app = typer.Typer(help="The human review queue of flagged answers.", no_args_is_help=True)
app.add_typer(review_app, name="review")


def _queue(data_dir: Path | None) -> Any:
    from verirag.pipeline.review import ReviewQueue

    return ReviewQueue(_settings(data_dir=data_dir).data_dir / "review.sqlite")


@review_app.command("list")
def review_list(
    status: Annotated[str, typer.Option(help="open | resolved | all")] = "open",
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """List review items (newest first)."""
    items = _queue(data_dir).list(
        None if status == "all" else status, [collection] if collection else None, limit
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


@review_app.command("show")
def review_show(
    item_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False, data_dir: DataDirOpt = None
) -> None:
    """Show one review item with its answer, flags and sources."""
    item = _guard(lambda: _queue(data_dir).get(item_id))
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


@review_app.command("resolve")
def review_resolve(
    item_id: Annotated[int, typer.Argument()],
    resolution: Annotated[str, typer.Option(help="correct | incorrect | partially-correct")],
    note: Annotated[str, typer.Option(help="what the reviewer found")] = "",
    data_dir: DataDirOpt = None,
) -> None:
    """Record a reviewer's verdict on a flagged answer."""
    item = _guard(lambda: _queue(data_dir).resolve(item_id, resolution, note))
    out.print(f"#{item.id} resolved as {item.resolution}")


@app.command()
def calibrate(
    pairs: Annotated[int, typer.Option(min=10, help="HaluEval QA pairs")] = 100,
    questions: Annotated[int, typer.Option(min=10, help="SQuAD questions")] = 30,
    distractors: Annotated[int, typer.Option(min=0, help="other SQuAD paragraphs indexed")] = 60,
    k: Annotated[int, typer.Option(min=1, help="sources per question")] = 4,
    seed: Annotated[int, typer.Option(help="sampling seed")] = 1,
    generator: Annotated[str | None, typer.Option(help="model to calibrate for")] = None,
    data: Annotated[Path | None, typer.Option(help="public data dir (../shared/data)")] = None,
    output: Annotated[
        Path | None, typer.Option(help="default: the packaged file for the generator")
    ] = None,
    save_signals: Annotated[
        Path | None, typer.Option(help="also write the measured signals here (JSON)")
    ] = None,
    from_signals: Annotated[
        Path | None, typer.Option(help="refit from signals saved earlier; loads no model")
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Fit the decision thresholds on SQuAD and HaluEval QA; write the calibration file."""
    import tempfile
    from importlib import resources

    from verirag.pipeline.evaluation.calibrate import CalibrationData, collect, fit
    from verirag.pipeline.evaluation.datasets import Passage, shared_data_dir, write_jsonl
    from verirag.evaluators.decision import CALIBRATION_DIR, Thresholds, calibration_name
    from verirag.pipeline.evaluation.hallucination import SignalScorer
    from verirag.generators import make_generator
    from verirag.pipeline.indexing import IndexingPipeline
    from verirag.pipeline.rag import RagPipeline

    settings = _settings(data_dir=data_dir, generator=generator)
    base = Thresholds.load(model=settings.generator)
    if from_signals is not None:
        if not from_signals.is_file():
            _fail(f"signals file not found: {from_signals}")
        measured = _guard(lambda: CalibrationData.load(from_signals))
    else:
        root = data or shared_data_dir()
        squad = root / "squad_v1.1_dev" / "dev-v1.1.json"
        halueval = root / "halueval_qa" / "qa.jsonl"
        for path in (squad, halueval):
            if not path.is_file():
                _fail(f"public data file not found: {path} (pass --data)")
        gen = _guard(lambda: make_generator(settings.generator, settings))
        work = Path(tempfile.mkdtemp(prefix="verirag-calibrate-"))
        scratch = settings.with_overrides(data_dir=work, model_cache=settings.models_dir)

        def ask(collection: str, corpus: list[Passage], qs: list[str]) -> list[Answer]:
            source = write_jsonl(corpus, work / collection / "passages.jsonl")
            IndexingPipeline(scratch).run([source], collection)
            rag = RagPipeline(scratch, generator=gen, thresholds=base)
            answers = []
            for q in qs:
                answers.append(rag.ask(q, collection, k))
                err.print(f"  {collection}: asked {len(answers)}/{len(qs)}", end="\r")
            return answers

        measured = _guard(
            lambda: collect(
                scorer=SignalScorer(gen, RagPipeline(scratch).prompts, base, settings.idk_sentence),
                ask=ask,
                squad_path=squad,
                halueval_path=halueval,
                pairs=pairs,
                questions=questions,
                distractors=distractors,
                seed=seed,
                generator_name=gen.name,
            )
        )
        signals_path = save_signals or work / "signals.json"
        measured.dump(signals_path)
        out.print(f"signals written to {signals_path}")
    fitted = _guard(
        lambda: fit(measured, base, settings.generator, log=lambda line: out.print(line))
    )
    folder = resources.files("verirag.evaluators").joinpath(CALIBRATION_DIR)
    target = output or Path(str(folder.joinpath(calibration_name(settings.generator))))
    target.write_text(fitted.dump())
    out.print(f"wrote {target} (version {fitted.version})")


DEMO_QUERY = "How do I handle an exception raised inside a with statement?"
DEMO_QUESTION = "What does the pass statement do?"


@app.command()
def demo(
    query: Annotated[str, typer.Option(help="query to search for")] = DEMO_QUERY,
    question: Annotated[str, typer.Option(help="question to answer")] = DEMO_QUESTION,
    data_dir: DataDirOpt = None,
) -> None:
    """Index Python's built-in help topics (no download needed), search, and answer."""
    settings = _settings(data_dir=data_dir)
    from verirag.pipeline.cli.demo import write_pydoc_corpus
    from verirag.pipeline.indexing import IndexingPipeline
    from verirag.pipeline.rag import RagPipeline

    corpus = write_pydoc_corpus(settings.data_dir / "demo")
    started = time.perf_counter()
    pipeline = IndexingPipeline(settings)
    report = _guard(lambda: pipeline.run([corpus], "demo"))
    _print_report(report)
    rag = RagPipeline(settings, encoder=pipeline.encoder)
    hits = _guard(lambda: rag.search(query, "demo", 3))
    out.print(f"\n[bold]search:[/] {query}")
    for hit in hits:
        _print_hit(hit)
    out.print(f"\n[bold]ask:[/] {question}")
    answer = _guard(lambda: rag.ask(question, "demo"))
    _print_answer(answer, streamed=False)
    out.print(
        f"\n[dim]demo done in {time.perf_counter() - started:.1f}s; data in {settings.data_dir}[/]"
    )


keys_app = typer.Typer(help="API keys for the HTTP API (`verirag serve`).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _key_store(data_dir: Path | None) -> Any:
    from verirag.pipeline.api.keys import KeyStore

    return KeyStore.for_data_dir(_settings(data_dir=data_dir).data_dir)


@keys_app.command("create")
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
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps({**asdict(key), "key": secret}))
        return
    out.print(secret, markup=False)
    err.print(
        f"key #{key.id} ({key.scope}; collections: {', '.join(key.collections)}) created; "
        "store it now, it cannot be shown again"
    )


@keys_app.command("list")
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


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="the key's id (see `verirag keys list`)")],
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke an API key: requests with it get 401 from then on."""
    key = _guard(lambda: _key_store(data_dir).revoke(key_id))
    out.print(f"key #{key.id} revoked")


@app.command()
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

    settings = _settings(data_dir=data_dir, api_worker_threads=workers_threads)
    api = _guard(lambda: create_app(settings))
    # One process: the models are loaded once and shared by the worker threads.
    uvicorn.run(api, host=host, port=port, log_level=log_level, workers=1)


eval_app = typer.Typer(
    help="Evaluation reports: retrieval, qa, abstention, hallucination, ragas, baseline; "
    "compare runs.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")

SUITE_HELP = {
    "retrieval": "recall@1/5/10, MRR@10 and nDCG@10 of dense, BM25 and hybrid retrieval.",
    "qa": "End-to-end answers: exact match, token F1, contains-gold, decision mix, latency.",
    "abstention": "Abstaining on questions whose gold passage is left out of the index: "
    "precision, recall, F1.",
    "hallucination": "Labelled answers (HaluEval): AUROC, best F1, precision/recall at the "
    "shipped thresholds, calibration and risk-coverage, per signal and combined.",
    "ragas": "RAGAS faithfulness, response relevancy, context precision and recall, judged by "
    "the local generator (JSON-schema grammar); failures counted, never averaged in.",
    "baseline": "The same questions through a plain LangChain RAG chain, side by side with "
    "verirag: accuracy, unsupported answers delivered, abstention, latency.",
}


def _eval_command(suite: str) -> Any:
    def command(
        data: Annotated[
            Path, typer.Option(help="dataset: SQuAD JSON, BEIR dir, HaluEval or plain JSONL")
        ],
        fmt: Annotated[
            str | None,
            typer.Option("--format", help="squad | beir | halueval | jsonl (default: detect)"),
        ] = None,
        limit: Annotated[
            int | None,
            typer.Option(min=1, help="seeded sample of questions (hallucination: pairs)"),
        ] = None,
        seed: Annotated[int, typer.Option(help="sampling seed")] = 0,
        out_dir: Annotated[
            Path | None,
            typer.Option("--out", help="run directory (re-run with it to resume)"),
        ] = None,
        generator: Annotated[str | None, typer.Option(help="generator model")] = None,
        embedder: Annotated[str | None, typer.Option(help="embedding model")] = None,
        k: Annotated[int, typer.Option("-k", min=1, max=100, help="sources per question")] = 5,
        max_tokens: Annotated[int, typer.Option(min=1, max=4096)] = 128,
        unanswerable: Annotated[
            float,
            typer.Option(help="abstention/baseline: share of questions whose passage is left out"),
        ] = 0.5,
        distractors: Annotated[
            int | None,
            typer.Option(min=0, help="index only the gold passages plus N others (default: all)"),
        ] = None,
        metrics: Annotated[
            str | None, typer.Option(help="ragas: comma-separated subset of the four metrics")
        ] = None,
        progress: Annotated[bool, typer.Option(help="progress bar")] = True,
        data_dir: DataDirOpt = None,
    ) -> None:
        _run_eval(
            suite, data, fmt, limit, seed, out_dir, generator, embedder, k, max_tokens,
            unanswerable, distractors, metrics, progress, data_dir,
        )  # fmt: skip

    command.__doc__ = SUITE_HELP[suite]
    return command


def _run_eval(
    suite: str,
    data: Path,
    fmt: str | None,
    limit: int | None,
    seed: int,
    out_dir: Path | None,
    generator: str | None,
    embedder: str | None,
    k: int,
    max_tokens: int,
    unanswerable: float,
    distractors: int | None,
    metrics: str | None,
    progress: bool,
    data_dir: Path | None,
) -> None:
    from datetime import datetime

    from verirag.pipeline.evaluation.engine import EvalConfig, plan, prepare_run_dir, summarise, timer
    from verirag.pipeline.evaluation.report import render_markdown, write_report

    settings = _settings(data_dir=data_dir)
    if fmt is not None and fmt not in ("squad", "beir", "halueval", "jsonl"):
        _fail(f"unknown --format '{fmt}'; choose squad, beir, halueval or jsonl")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    config = EvalConfig(
        suite=suite,
        data=data,
        out=out_dir or settings.data_dir / "eval" / f"{suite}-{stamp}",
        fmt=fmt,  # type: ignore[arg-type]
        limit=limit,
        seed=seed,
        generator=generator or settings.generator,
        embedder=embedder or settings.embedder,
        k=k,
        max_tokens=max_tokens,
        unanswerable=unanswerable,
        distractors=distractors,
        metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()) if metrics else (),
    )
    # Everything about the data is checked here, before a model is loaded.
    the_plan = _guard(lambda: plan(config))
    resumed = _guard(lambda: prepare_run_dir(config))
    info = the_plan.info()
    err.print(
        f"{'resuming' if resumed else 'starting'} {suite} eval: {info.items} items, "
        f"{info.passages} passages indexed, {info.format} data, seed {seed} -> {config.out}"
    )
    elapsed = timer()
    from verirag.pipeline.evaluation.suites import run_suite

    try:
        result = _guard(lambda: run_suite(the_plan, settings, progress=progress))
    except KeyboardInterrupt:
        err.print(
            f"\ninterrupted: finished items are saved in {config.out / 'items.jsonl'}; "
            "run the same command again to resume"
        )
        raise typer.Exit(130) from None
    summary = summarise(config, the_plan, result, elapsed())
    paths = write_report(config.out, summary)
    out.print(render_markdown(summary), markup=False)
    out.print(f"\nreport: {paths[1]}\nsummary: {paths[0]}\nitems: {config.out / 'items.jsonl'}")


for _suite in SUITE_HELP:
    eval_app.command(name=_suite)(_eval_command(_suite))


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="run directory (or its summary.json)")],
    run_b: Annotated[Path, typer.Argument(help="run directory (or its summary.json)")],
    as_json: JsonOpt = False,
) -> None:
    """Metric deltas between two runs (B - A)."""
    from verirag.pipeline.evaluation.report import compare_runs, render_compare_markdown
    from verirag.pipeline.evaluation.runs import RunSummary

    a = _guard(lambda: RunSummary.load(run_a))
    b = _guard(lambda: RunSummary.load(run_b))
    if as_json:
        table = compare_runs(a, b)
        out.print_json(json.dumps(asdict(table)))
        return
    out.print(render_compare_markdown(a, b), markup=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted: completed batches are saved; re-run to finish")
        sys.exit(130)


if __name__ == "__main__":
    main()
