"""Measuring the signals that `calibrate.fit` turns into decision thresholds.

The real pipeline answers SQuAD questions twice, once with their paragraph indexed and once
without, each time from a scratch collection; HaluEval QA answers are scored by the same
generator's checks. The `verirag calibrate` command only parses options, calls
`measure_signals`, fits and writes the file.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from verirag.core.records import Answer
from verirag.core.settings import Settings
from verirag.evaluators.decision import CALIBRATION_DIR, Thresholds, calibration_name
from verirag.pipeline.evaluation.calibrate import (
    CONFIRM_PART,
    HALUEVAL_PART,
    CalibrationData,
    Checkpoint,
    HaluRow,
    Progress,
    collect,
    score_halueval,
    with_more_pairs,
    with_own_answers,
    with_second_set,
)
from verirag.pipeline.evaluation.datasets import Passage, write_jsonl
from verirag.pipeline.evaluation.hallucination import SignalScorer

if TYPE_CHECKING:
    from verirag.generators.base import Generator

__all__ = [
    "Progress",
    "RunOptions",
    "measure_more",
    "measure_signals",
    "packaged_calibration_path",
    "public_data_files",
]


SQUAD_FILE = Path("squad_v1.1_dev") / "dev-v1.1.json"
HALUEVAL_FILE = Path("halueval_qa") / "qa.jsonl"
SUMMARIES_FILE = Path("halueval_summarization") / "summarization.jsonl"


def public_data_files(data_root: Path) -> tuple[Path, Path]:
    """The SQuAD v1.1 dev file and the HaluEval QA file under `data_root` (may not exist)."""
    return data_root / SQUAD_FILE, data_root / HALUEVAL_FILE


def packaged_calibration_path(generator: str) -> Path:
    """Where the calibration file shipped with the package for `generator` lives."""
    folder = resources.files("verirag.evaluators").joinpath(CALIBRATION_DIR)
    return Path(str(folder.joinpath(calibration_name(generator))))


@dataclass(frozen=True)
class RunOptions:
    """How a calibration run measures, whatever it measures."""

    seed: int = 1  # sampling seed
    # The thresholds answers are decided with while measuring (default: the generator's file).
    thresholds: Thresholds | None = None
    # Scratch collections and the checkpoint of measured items (default: a new temporary
    # directory; the same one again resumes a stopped run), never the user's data directory.
    work_dir: Path | None = None
    progress: Progress | None = None
    avoid: Sequence[Path] = ()  # data files whose items are never sampled (a test set)
    # SQuAD question ids never sampled either: the held-out answers' (`--recalibrate-with`),
    # which must not be asked again as the fit's own.
    held_out: frozenset[str] = frozenset()
    # Minutes: no new item is started after this, over every part of the run.
    budget_minutes: float | None = None


def measure_signals(
    settings: Settings,
    data_root: Path,
    *,
    pairs: int,
    questions: int,
    distractors: int,
    k: int,
    run: RunOptions = RunOptions(),
    confirm_pairs: int = 0,
) -> CalibrationData:
    """Load `settings.generator` once, answer and score the samples, return the signals.

    `confirm_pairs`: HaluEval summarization pairs scored as the second set the given-answer
    model must hold on. Raises `FileNotFoundError` for a missing data file, before any model
    is loaded, and `ModelError` when the generator cannot be.
    """
    summaries = [data_root / SUMMARIES_FILE] if confirm_pairs else []
    _require([*public_data_files(data_root), *summaries])
    avoided = _avoided(run)
    rig = _Rig.load(settings, run)
    return _collect(
        rig,
        data_root,
        pairs=pairs,
        questions=questions,
        distractors=distractors,
        k=k,
        avoid=avoided,
        confirm_pairs=confirm_pairs,
    )


# Each kind of given-answer pair `measure_more` adds: its file and how it joins the signals.
_MORE: dict[str, tuple[Path, Callable[[CalibrationData, list[HaluRow], int], CalibrationData]]] = {
    HALUEVAL_PART: (HALUEVAL_FILE, with_more_pairs),  # fitted on
    CONFIRM_PART: (SUMMARIES_FILE, with_second_set),  # the second set
}


def measure_more(
    settings: Settings,
    data_root: Path,
    measured: CalibrationData,
    *,
    pairs: Mapping[str, int],
    questions: int = 0,
    distractors: int = 0,
    k: int = 4,
    run: RunOptions = RunOptions(),
) -> CalibrationData:
    """`measured` (signals saved earlier) with what is asked for measured by
    `settings.generator` and joined to it: `pairs[part]` given-answer pairs of each part,
    HaluEval QA pairs added to those fitted on (HALUEVAL_PART) and HaluEval summarization
    pairs as the second set (CONFIRM_PART); then, with `questions`, the own answers replaced
    by that many new SQuAD questions asked by the pipeline as it is now, each with and
    without its paragraph among `distractors` others (HaluEval rows are kept). No item the
    signals sampled, or an earlier part added, is drawn again, and every id stays excluded.
    The generator is loaded once and `run.budget_minutes` spans every part, pairs first.
    Raises `ValueError` when the budget ran out before any new own answer was measured (the
    saved ones would be replaced by none)."""
    asked = {part: n for part, n in pairs.items() if n}
    files = [data_root / _MORE[part][0] for part in asked]
    if questions:
        files.append(public_data_files(data_root)[0])
    _require(files)
    if not asked and not questions:
        return measured
    given = _avoided(run)
    rig = _Rig.load(settings, run)
    for part, n in asked.items():
        file, add = _MORE[part]
        rows, done = score_halueval(
            rig.scorer,
            data_root / file,
            n,
            run.seed,
            Checkpoint(rig.work / f"{part}-{rig.stem}-p{n}-s{run.seed}.jsonl"),
            part,
            avoid=_and_sampled(given, measured, "halueval"),
            progress=run.progress,
            in_time=rig.in_time,
        )
        measured = add(measured, rows, len(done))
    if not questions:
        return measured
    fresh = _collect(
        rig,
        data_root,
        pairs=0,
        questions=questions,
        distractors=distractors,
        k=k,
        avoid=_and_sampled(given, measured, "squad"),
    )
    new = len({a.item_id for a in fresh.asked})
    if not new:
        raise ValueError(
            "the budget ran out before any new own answer was measured: nothing to replace "
            "the saved ones with (raise --budget)"
        )
    how = (
        f"{new} new SQuAD questions with and without their paragraph among {distractors} "
        f"others (seed {run.seed})"
    )
    return with_own_answers(measured, fresh, how)


def _require(paths: Sequence[Path]) -> None:
    """Raise before any model is loaded when a data file is missing."""
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"public data file not found: {path}")


def _avoided(run: RunOptions) -> dict[str, frozenset[str]]:
    """The ids `run` never samples: its data files' and its held-out questions'."""
    given = avoided_ids(run.avoid)
    return {**given, "squad": given["squad"] | run.held_out}


def _and_sampled(
    given: Mapping[str, frozenset[str]], measured: CalibrationData, kind: str
) -> dict[str, frozenset[str]]:
    """The ids to avoid: `given`, and the ids of `kind` the signals sampled already."""
    return {**given, kind: given[kind] | frozenset(measured.excluded.get(kind, ()))}


def _collect(
    rig: _Rig,
    data_root: Path,
    *,
    pairs: int,
    questions: int,
    distractors: int,
    k: int,
    avoid: Mapping[str, Collection[str]],
    confirm_pairs: int = 0,
) -> CalibrationData:
    """`collect` with the rig's generator: each SQuAD corpus indexed in the work directory
    and asked through the real pipeline."""
    from verirag.pipeline.indexing import IndexingPipeline
    from verirag.pipeline.rag import RagPipeline

    squad, halueval = public_data_files(data_root)

    def ask(collection: str, corpus: list[Passage]) -> Callable[[str], Answer]:
        source = write_jsonl(corpus, rig.work / collection / "passages.jsonl")
        IndexingPipeline(rig.scratch).run([source], collection)
        rag = RagPipeline(
            rig.scratch, generator=rig.generator, thresholds=rig.base, measure_all=True
        )
        return lambda text: rag.ask(text, collection, k)

    seed = rig.run.seed
    return collect(
        scorer=rig.scorer,
        ask=ask,
        squad_path=squad,
        halueval_path=halueval,
        pairs=pairs,
        questions=questions,
        distractors=distractors,
        seed=seed,
        generator_name=rig.generator.name,
        # In the work directory: a run started again with the same one resumes.
        checkpoint=rig.work / f"signals-{rig.stem}-q{questions}-p{pairs}-s{seed}-k{k}.jsonl",
        confirm_path=data_root / SUMMARIES_FILE if confirm_pairs else None,
        confirm_pairs=confirm_pairs,
        progress=rig.run.progress,
        avoid={kind: frozenset(ids) for kind, ids in avoid.items()},
        deadline=rig.deadline,
    )


@dataclass(frozen=True)
class _Rig:
    """What measuring needs, loaded once: the thresholds answers are decided with, the
    generator, the work directory, settings that keep scratch collections in it, the scorer
    of given answers, and the run's options and deadline (one for every part)."""

    base: Thresholds
    generator: Generator
    work: Path
    scratch: Settings
    scorer: SignalScorer
    run: RunOptions
    deadline: float | None  # a time.monotonic() value

    @property
    def stem(self) -> str:  # names the checkpoint files after the generator
        return calibration_name(self.generator.name).removesuffix(".json")

    def in_time(self) -> bool:
        return self.deadline is None or time.monotonic() < self.deadline

    @classmethod
    def load(cls, settings: Settings, run: RunOptions) -> _Rig:
        from verirag.generators import make_generator
        from verirag.pipeline.rag import RagPipeline

        # Claims are scored raw (the judge's P(yes) after the lexical penalties): the fit
        # learns the claim model on raw scores, and one already applied would apply twice.
        base = replace(
            run.thresholds or Thresholds.load(model=settings.generator), claim_model=None
        )
        generator = make_generator(settings.generator, settings)
        work = run.work_dir or Path(tempfile.mkdtemp(prefix="verirag-calibrate-"))
        # Model files still come from the user's cache, so nothing is downloaded twice.
        scratch = settings.with_overrides(data_dir=work, model_cache=settings.models_dir)
        prompts = RagPipeline(scratch).prompts
        scorer = SignalScorer(generator, prompts, base, settings.idk_sentence)
        # The budget counts from here: loading the model is not measuring.
        deadline = time.monotonic() + run.budget_minutes * 60 if run.budget_minutes else None
        return cls(base, generator, work, scratch, scorer, run, deadline)


def avoided_ids(paths: Sequence[Path]) -> dict[str, frozenset[str]]:
    """The question ids and HaluEval pair ids in the data files `paths` (format detected)."""
    from verirag.pipeline.evaluation.datasets import load_eval_dataset

    squad: set[str] = set()
    halueval: set[str] = set()
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"file to avoid not found: {path}")
        data = load_eval_dataset(path)
        halueval.update(h.pair_id for h in data.halu)
        squad.update(item.item_id for item in data.items)
    return {"squad": frozenset(squad), "halueval": frozenset(halueval)}


def with_text_anchors(data: CalibrationData, data_root: Path) -> CalibrationData:
    """`data` with every anchor read again as the verifier reads it now: own answers' from
    their stored question, short answer and sources, HaluEval answers' from the public files
    by pair id. The anchor is pure text, so this is what the verifier would measure today; a
    fit then weighs the signal the pipeline computes, not the one in force when the signals
    were saved (or None, for files from before it existed). Rows whose text is missing keep
    what was stored."""
    from verirag.evaluators.alignment import anchor_alignment, given_anchor
    from verirag.pipeline.evaluation.datasets.halueval import read_halueval

    answers: dict[tuple[str, bool], tuple[str, str, str]] = {}
    for path in (data_root / HALUEVAL_FILE, data_root / SUMMARIES_FILE):
        if path.is_file():
            for item in read_halueval(path):
                answers[(item.pair_id, not item.hallucinated)] = (
                    item.question,
                    item.answer,
                    item.knowledge,
                )

    def given(rows: list[HaluRow]) -> list[HaluRow]:
        out = []
        for row in rows:
            found = answers.get((row.item_id, row.right))
            if found is not None:
                question, answer, knowledge = found
                row = replace(row, anchor=given_anchor(question, answer, [knowledge]))
            out.append(row)
        return out

    own = [
        replace(o, anchor=anchor_alignment(o.sources.question, o.sources.short, o.sources.read))
        if o.sources.question and o.sources.texts
        else o
        for o in data.own
    ]
    return replace(data, own=own, halueval=given(data.halueval), confirm=given(data.confirm))
