"""`verirag eval`: one command per evaluation suite, and `compare` for two runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
    from verirag.core.settings import Settings
    from verirag.pipeline.evaluation.engine import EvalConfig

app = typer.Typer(
    help="Evaluation reports: retrieval, qa, abstention, hallucination, ragas, baseline; "
    "compare runs.",
    no_args_is_help=True,
)

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
FORMATS = ("squad", "beir", "halueval", "jsonl")


@dataclass(frozen=True)
class EvalOptions:
    """A suite command's options as given; `config` fills the gaps from the settings."""

    suite: str
    data: Path
    fmt: str | None
    limit: int | None
    seed: int
    out_dir: Path | None
    generator: str | None
    embedder: str | None
    k: int
    max_tokens: int
    unanswerable: float
    distractors: int | None
    metrics: str | None
    progress: bool
    data_dir: Path | None
    agreement_samples: int = 0
    all_signals: bool = False

    def config(self, settings: Settings, stamp: str) -> EvalConfig:
        from verirag.pipeline.evaluation.engine import EvalConfig

        return EvalConfig(
            suite=self.suite,
            data=self.data,
            out=self.out_dir or settings.data_dir / "eval" / f"{self.suite}-{stamp}",
            fmt=self.fmt,  # type: ignore[arg-type]  # checked against FORMATS by _run_eval
            limit=self.limit,
            seed=self.seed,
            generator=self.generator or settings.generator,
            embedder=self.embedder or settings.embedder,
            k=self.k,
            max_tokens=self.max_tokens,
            unanswerable=self.unanswerable,
            distractors=self.distractors,
            metrics=tuple(m.strip() for m in (self.metrics or "").split(",") if m.strip()),
            agreement_samples=self.agreement_samples,
            all_signals=self.all_signals,
        )


def _suite_command(suite: str) -> Callable[..., None]:
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
        agreement_samples: Annotated[
            int,
            typer.Option(
                min=0,
                max=16,
                help="sample the short answer this many times again and report the agreement "
                "(sampling consistency); 0 = off",
            ),
        ] = 0,
        all_signals: Annotated[
            bool,
            typer.Option(
                "--all-signals",
                help="qa/abstention: measure every signal, also those the calibration gives no "
                "weight (the answer check: one more judge call per answer; the rests judge: "
                "one short one per claim), so that other calibrations can be scored on the "
                "stored answers",
            ),
        ] = False,
    ) -> None:
        _run_eval(
            EvalOptions(
                suite=suite,
                data=data,
                fmt=fmt,
                limit=limit,
                seed=seed,
                out_dir=out_dir,
                generator=generator,
                embedder=embedder,
                k=k,
                max_tokens=max_tokens,
                unanswerable=unanswerable,
                distractors=distractors,
                metrics=metrics,
                progress=progress,
                data_dir=data_dir,
                agreement_samples=agreement_samples,
                all_signals=all_signals,
            )
        )

    command.__doc__ = SUITE_HELP[suite]
    return command


def _run_eval(options: EvalOptions) -> None:
    from datetime import datetime

    from verirag.pipeline.evaluation.engine import plan, prepare_run_dir, summarise, timer
    from verirag.pipeline.evaluation.report import render_markdown, write_report

    settings = load_settings(data_dir=options.data_dir)
    if options.fmt is not None and options.fmt not in FORMATS:
        fail(f"unknown --format '{options.fmt}'; choose squad, beir, halueval or jsonl")
    config = options.config(settings, datetime.now().strftime("%Y%m%d-%H%M%S"))
    # Everything about the data is checked here, before a model is loaded.
    the_plan = guard(lambda: plan(config))
    resumed = guard(lambda: prepare_run_dir(config))
    info = the_plan.info()
    err.print(
        f"{'resuming' if resumed else 'starting'} {config.suite} eval: {info.items} items, "
        f"{info.passages} passages indexed, {info.format} data, seed {config.seed} -> {config.out}"
    )
    elapsed = timer()
    from verirag.pipeline.evaluation.suites import run_suite

    try:
        result = guard(lambda: run_suite(the_plan, settings, progress=options.progress))
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
    app.command(name=_suite)(_suite_command(_suite))


@app.command("compare")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="run directory (or its summary.json)")],
    run_b: Annotated[Path, typer.Argument(help="run directory (or its summary.json)")],
    as_json: JsonOpt = False,
) -> None:
    """Metric deltas between two runs (B - A)."""
    from verirag.pipeline.evaluation.report import compare_runs, render_compare_markdown
    from verirag.pipeline.evaluation.runs import RunSummary

    a = guard(lambda: RunSummary.load(run_a))
    b = guard(lambda: RunSummary.load(run_b))
    if as_json:
        table = compare_runs(a, b)
        out.print_json(json.dumps(asdict(table)))
        return
    out.print(render_compare_markdown(a, b), markup=False)
