"""`verirag calibrate`: fit the decision thresholds and write the calibration file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from verirag.pipeline.cli.common import DataDirOpt, err, fail, guard, load_settings, out

FEW_DOMAIN_ANSWERS = 150  # below this, a collection's recalibration is warned about

if TYPE_CHECKING:
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.calibrate import HeldOutAnswer


def calibrate(
    pairs: Annotated[int, typer.Option(min=10, help="HaluEval QA pairs")] = 100,
    summary_pairs: Annotated[
        int,
        typer.Option(
            min=0,
            help="HaluEval summarization pairs, never fitted on: the given-answer model keeps "
            "the signals that hold on both sets",
        ),
    ] = 0,
    more_pairs: Annotated[
        int,
        typer.Option(
            min=0,
            help="with --from-signals: score this many more HaluEval QA pairs (none the "
            "signals sampled) and fit on all of them",
        ),
    ] = 0,
    own_questions: Annotated[
        int,
        typer.Option(
            min=0,
            help="with --from-signals: ask this many new SQuAD questions (with and without "
            "their paragraph, --distractors, -k) and fit on those own answers instead of the "
            "saved ones, which an earlier pipeline gave; their ids stay excluded",
        ),
    ] = 0,
    questions: Annotated[int, typer.Option(min=10, help="SQuAD questions")] = 30,
    distractors: Annotated[int, typer.Option(min=0, help="other SQuAD paragraphs indexed")] = 60,
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="sources per question")] = 4,
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
        Path | None,
        typer.Option(
            help="refit from signals saved earlier; loads no model unless --more-pairs or "
            "--summary-pairs adds pairs to them"
        ),
    ] = None,
    read_anchors_again: Annotated[
        bool,
        typer.Option(
            help="with --from-signals: read every anchor again from the stored texts as the "
            "verifier reads it now (default: fit the anchors as saved, so that a refit "
            "reproduces the calibration the signals came from)"
        ),
    ] = False,
    recalibrate_with: Annotated[
        list[str] | None,
        typer.Option(
            help="RUN[=CALIBRATION]: a `verirag eval abstention|qa` run directory of this "
            "generator, answered under CALIBRATION (default: the shipped one), whose own "
            "answers recalibrate the own-answer model's intercept after the fit (decisions "
            "unchanged) and are excluded from later samples; repeatable"
        ),
    ] = None,
    refit_with: Annotated[
        list[str] | None,
        typer.Option(
            help="RUN[=CALIBRATION]: a `verirag eval abstention|qa` run of this generator "
            "whose own answers (200 or more over all runs) the own-answer model is fitted on "
            "again, every weight and the answer cut, out of fold; with signals measured "
            "since the calibration's own questions were asked. Excluded from later samples; "
            "supersedes --recalibrate-with's shift; repeatable"
        ),
    ] = None,
    refit_anew: Annotated[
        bool,
        typer.Option(
            help="with --refit-with: fit on these runs' answers alone, not on those an earlier "
            "refit stored (which stay excluded): a signal the earlier runs did not measure "
            "is otherwise neither kept nor tried"
        ),
    ] = False,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            help="scratch collections and the measured items; the same directory again "
            "resumes a stopped run (default: a new temporary directory)"
        ),
    ] = None,
    avoid: Annotated[
        list[Path] | None,
        typer.Option(
            help="a data file (SQuAD JSON, HaluEval JSONL) whose items are never sampled, "
            "e.g. your test set; repeatable"
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="minutes: start no new item after this and fit on what was measured "
            "(HaluEval pairs first, then SQuAD questions)",
        ),
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option(
            help="write the calibration into this collection instead (with --recalibrate-with "
            "runs of its domain): its answers are decided by it, every other collection's by "
            "the shipped one"
        ),
    ] = None,
    remove: Annotated[
        bool,
        typer.Option(
            help="with --collection: remove the collection's own calibration (its answers are "
            "decided by the shipped one again)"
        ),
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Fit the decision thresholds on SQuAD and HaluEval QA; write the calibration file."""
    import tempfile

    from verirag.evaluators.decision import Thresholds
    from verirag.generators import backend_for
    from verirag.pipeline.evaluation.calibrate import (
        CONFIRM_PART,
        HALUEVAL_PART,
        CalibrationData,
        with_held_out,
        with_refit,
    )
    from verirag.pipeline.evaluation.calibration_fit import fit, write_calibration
    from verirag.pipeline.evaluation.calibration_run import (
        RunOptions,
        measure_more,
        measure_signals,
        packaged_calibration_path,
        public_data_files,
        with_text_anchors,
    )
    from verirag.pipeline.evaluation.datasets import shared_data_dir

    settings = load_settings(data_dir=data_dir, generator=generator)
    own_target = _collection_target(settings.collections_dir, collection, remove, output)
    if remove:
        return
    if own_target is not None and refit_with:
        fail(
            "--refit-with fits every weight of the shipped own-answer model again; a "
            "collection's calibration moves its level only: pass --recalibrate-with"
        )
    if own_target is not None and not recalibrate_with:
        fail(
            "a collection's calibration is the shipped fit moved to labelled answers of its "
            "domain: pass --recalibrate-with RUN (a `verirag eval abstention|qa` run on its "
            "kind of documents)"
        )
    if refit_anew and not refit_with:
        fail("--refit-anew replaces the stored refit answers with --refit-with runs: pass them")
    base = Thresholds.load(model=settings.generator)
    earlier: CalibrationData | None = None
    if from_signals is not None:
        if not from_signals.is_file():
            fail(f"signals file not found: {from_signals}")
        earlier = guard(lambda: CalibrationData.load(from_signals))
        if read_anchors_again:  # pure text: what the verifier would measure today
            earlier = with_text_anchors(earlier, data or shared_data_dir())
    if (more_pairs or own_questions) and earlier is None:
        fail("--more-pairs and --own-questions change saved signals: pass --from-signals")
    # Read before any model is loaded, so that a bad run directory fails in seconds; held out
    # before the signals are written, so that a refit from them reproduces the fit.
    held = guard(lambda: _held_out_rows(recalibrate_with or [], settings.generator, base))
    refit = guard(lambda: _held_out_rows(refit_with or [], settings.generator, base))
    if own_target is not None:
        from verirag.pipeline.evaluation.calibration_fit import measures_weighed

        # Answers lacking one are left out of the shift by the fit (and said there).
        if held and not any(measures_weighed(base, h) for h in held):
            fail(
                f"none of the runs' {len(held)} own answers recorded every signal the shipped "
                "own-answer model weighs (runs from before it was measured): measure it again "
                "with `python bench/remeasure_retrieval.py RUN`, or make a new run"
            )
    if own_target is not None and len(held) < FEW_DOMAIN_ANSWERS:
        # Measured: 84 Amazon answers over-corrected the other sample; 172 halved its gap.
        err.print(
            f"warning: {len(held)} labelled own answers fix a domain's level loosely; "
            f"{FEW_DOMAIN_ANSWERS} or more are advised (bench/RESULTS.md)"
        )
    if earlier is not None and not summary_pairs and not more_pairs and not own_questions:
        measured = with_refit(
            with_held_out(earlier, held, only=own_target is not None), refit, refit_anew
        )
        if save_signals is not None:
            measured.dump(save_signals)
            out.print(f"signals written to {save_signals}")
    else:
        root = data or shared_data_dir()
        if earlier is None:
            # Checked here too, so that the message can name the option that fixes it.
            for path in public_data_files(root):
                if not path.is_file():
                    fail(f"public data file not found: {path} (pass --data)")
        work = work_dir or Path(tempfile.mkdtemp(prefix="verirag-calibrate-"))
        work.mkdir(parents=True, exist_ok=True)
        err.print(f"work directory (pass it as --work-dir to resume): {work}")

        def asked(part: str, done: int, total: int) -> None:
            err.print(f"  {part}: {done}/{total}", end="\r")

        run = RunOptions(
            seed=seed,
            thresholds=base,
            work_dir=work,
            progress=asked,
            avoid=avoid or (),
            held_out=frozenset(h.item_id for h in (*held, *refit)),
            budget_minutes=budget,
        )

        def measure(earlier: CalibrationData | None) -> CalibrationData:
            if earlier is not None:  # only the pairs and questions asked for are measured
                return measure_more(
                    settings,
                    root,
                    earlier,
                    pairs={HALUEVAL_PART: more_pairs, CONFIRM_PART: summary_pairs},
                    questions=own_questions,
                    distractors=distractors,
                    k=k,
                    run=run,
                )
            return measure_signals(
                settings,
                root,
                pairs=pairs,
                questions=questions,
                distractors=distractors,
                k=k,
                run=run,
                confirm_pairs=summary_pairs,
            )

        measured = with_refit(
            with_held_out(guard(lambda: measure(earlier)), held, only=own_target is not None),
            refit,
            refit_anew,
        )
        signals_path = save_signals or work / "signals.json"
        measured.dump(signals_path)
        out.print(f"signals written to {signals_path}")
    fitted = guard(
        lambda: fit(
            measured,
            base,
            settings.generator,
            target_precision=settings.target_precision,
            judge=settings.judge,
            backend=backend_for(settings.generator, settings),
            log=lambda line: out.print(line),
        )
    )
    shipped = packaged_calibration_path(settings.generator)
    target = own_target or output or shipped
    excluded = write_calibration(fitted, measured, target, shipped)
    out.print(f"wrote {target} (version {fitted.version}) and {excluded.name}")


def _collection_target(
    collections_dir: Path, collection: str | None, remove: bool, output: Path | None
) -> Path | None:
    """Where a collection's own calibration goes (None: not asked for); with `remove`, it
    and its exclusion list are removed here."""
    from verirag.pipeline.calibrations import collection_calibration_path
    from verirag.pipeline.evaluation.calibration_fit import exclusion_path
    from verirag.retrievers.collection_dir import collection_exists

    if collection is None:
        if remove:
            fail("--remove needs --collection NAME")
        return None
    if output is not None:
        fail("--collection and --output both name where the calibration goes: pass one")
    target = guard(lambda: collection_calibration_path(collections_dir, collection))
    if not collection_exists(collections_dir, collection):
        fail(f"unknown collection '{collection}' (see `verirag collections`)")
    if remove:
        if not target.is_file():
            fail(f"collection '{collection}' has no calibration of its own")
        target.unlink()
        exclusion_path(target).unlink(missing_ok=True)
        out.print(f"removed the calibration of collection '{collection}'")
    return target


def _held_out_rows(specs: list[str], generator: str, base: Thresholds) -> list[HeldOutAnswer]:
    """The own answers of the evaluation runs `specs` (RUN[=CALIBRATION]), to be held out for
    the recalibration."""
    from verirag.evaluators.decision import Thresholds
    from verirag.pipeline.evaluation.held_out import held_out_answers

    rows = []
    for spec in specs:
        run, _, answered = spec.partition("=")
        under = Thresholds.load(Path(answered)) if answered else base
        rows += held_out_answers(Path(run), generator, under)
    return rows
