"""`verirag ask` and `verirag demo`: answers with citations, claim checks and a decision."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape

from verirag.core.records import Answer, split_collections
from verirag.generators.params import GenerationParams
from verirag.pipeline.cli.common import (
    DataDirOpt,
    FilterOpt,
    JsonOpt,
    fail,
    guard,
    load_settings,
    out,
)
from verirag.pipeline.cli.documents import print_hit, print_report

# For --help only: the options default to None (not given), so that the defaults live in
# `GenerationParams` and `Settings.max_tokens` alone and `generation_params` applies them.
_DEFAULT = GenerationParams()


def ask(
    question: Annotated[str, typer.Argument(help="the question")],
    collection: Annotated[
        str,
        typer.Option(
            "--collection", "-c", help="collection name; several joined by ',' (a,b) ask them all"
        ),
    ] = "default",
    k: Annotated[int | None, typer.Option("--k", "-k", help="chunks to retrieve")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="answer length limit")] = None,
    temperature: Annotated[
        float | None,
        typer.Option(help="0 = greedy (QA default)", show_default=str(_DEFAULT.temperature)),
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option(help="nucleus sampling", show_default=str(_DEFAULT.top_p)),
    ] = None,
    top_k: Annotated[
        int | None, typer.Option(help="0 = off", show_default=str(_DEFAULT.top_k))
    ] = None,
    frequency_penalty: Annotated[
        float | None, typer.Option(show_default=str(_DEFAULT.frequency_penalty))
    ] = None,
    presence_penalty: Annotated[
        float | None, typer.Option(show_default=str(_DEFAULT.presence_penalty))
    ] = None,
    stop: Annotated[list[str] | None, typer.Option(help="stop string (repeatable)")] = None,
    seed: Annotated[int | None, typer.Option(show_default=str(_DEFAULT.seed))] = None,
    generator: Annotated[str | None, typer.Option(help="registry name, path or hub id")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="print tokens as they come")] = False,
    filters: FilterOpt = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Answer a question from a collection, with citations, claim checks and a decision."""
    from verirag.generators.params import GenerationError, generation_params
    from verirag.pipeline.rag import RagPipeline
    from verirag.retrievers.filters import parse_filters

    settings = load_settings(data_dir=data_dir, generator=generator)
    try:
        params = generation_params(
            settings,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            stop=stop,
            seed=seed,
        )
    except GenerationError as exc:
        fail(f"invalid generation parameters: {exc}")
    where = guard(lambda: parse_filters(filters))
    rag = RagPipeline(settings)
    streaming = stream and not as_json
    if streaming:
        out.print()

    def on_token(piece: str) -> None:
        out.print(piece, end="", markup=False, highlight=False)

    names = split_collections(collection)
    answer: Answer = guard(
        lambda: rag.ask(question, names, k, params, on_token if streaming else None, where=where)
    )
    if as_json:
        out.print_json(json.dumps(asdict(answer), default=str))
        return
    if stream:
        out.print()
    print_answer(answer, streamed=stream)


def print_answer(answer: Answer, streamed: bool) -> None:
    colour = {"answer": "green", "review": "yellow", "abstain": "red"}[answer.decision]
    if answer.short_answer:
        out.print(
            f"\n[bold]{escape(answer.short_answer)}[/]"
            + (
                " [dim](the answer's own words; the model named none)[/]"
                if answer.short_answer_extracted
                else ""
            ),
            highlight=False,
        )
    if not streamed:
        out.print(f"\n{answer.text}", markup=False)
    out.print(
        f"\n[bold {colour}]{answer.decision.upper()}[/] — {answer.decision_reason} · "
        f"confidence {answer.confidence:.2f}"
        + ("" if answer.calibrated else " (uncalibrated for this generator)")
        + (
            f" · {answer.calibration}"
            if answer.calibration.startswith(("collection", "file"))
            else ""
        )
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


DEMO_QUERY = "How do I handle an exception raised inside a with statement?"
DEMO_QUESTION = "What does the pass statement do?"


def demo(
    query: Annotated[str, typer.Option(help="query to search for")] = DEMO_QUERY,
    question: Annotated[str, typer.Option(help="question to answer")] = DEMO_QUESTION,
    data_dir: DataDirOpt = None,
) -> None:
    """Index Python's built-in help topics (no download needed), search, and answer."""
    settings = load_settings(data_dir=data_dir)
    from verirag.pipeline.cli.demo import write_pydoc_corpus
    from verirag.pipeline.indexing import IndexingPipeline
    from verirag.pipeline.rag import RagPipeline

    corpus = write_pydoc_corpus(settings.data_dir / "demo")
    started = time.perf_counter()
    pipeline = IndexingPipeline(settings)
    report = guard(lambda: pipeline.run([corpus], "demo"))
    print_report(report)
    rag = RagPipeline(settings, encoder=pipeline.encoder)
    hits = guard(lambda: rag.search(query, "demo", 3))
    out.print(f"\n[bold]search:[/] {query}")
    for hit in hits:
        print_hit(hit)
    out.print(f"\n[bold]ask:[/] {question}")
    answer = guard(lambda: rag.ask(question, "demo"))
    print_answer(answer, streamed=False)
    out.print(
        f"\n[dim]demo done in {time.perf_counter() - started:.1f}s; data in {settings.data_dir}[/]"
    )
