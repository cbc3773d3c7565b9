"""The evaluation run loop: plan (no models), per-item work with a resumable log, summary.

`plan()` loads and validates the dataset and checks it suits the suite *before* anything
heavy is imported, so a bad file fails in a second with its path and line. Items are then
evaluated one at a time; each finished item is appended to `items.jsonl` and flushed, so a
run that is interrupted (or crashes) resumes where it stopped when started again with the
same `--out`. An item that raises is recorded as failed and the run goes on; a resumed run
retries failed items.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from verirag.pipeline.evaluation.datasets import (
    DatasetFormat,
    EvalDataset,
    EvalItem,
    HaluItem,
    Passage,
    leave_out_gold,
    load_eval_dataset,
    sample_halu,
    sample_items,
)
from verirag.pipeline.evaluation.runs import Cell, DatasetInfo, FailedItem, RunSummary, SuiteResult

SUITES = ("retrieval", "qa", "abstention", "hallucination", "ragas", "baseline")
# Suites whose questions need gold answers, and which build unanswerable questions.
NEEDS_ANSWERS = {"qa", "abstention", "ragas", "baseline"}
UNANSWERABLE_SUITES = {"abstention", "baseline"}
# The settings (`EvalConfig` fields) each suite's numbers depend on, as a report lists them; the
# dataset's own (format, limit, seed) are reported with the dataset.
_ANSWERING = ("generator", "embedder", "k", "max_tokens", "distractors")
SUITE_SETTINGS: dict[str, tuple[str, ...]] = {
    "retrieval": ("embedder", "distractors"),  # searches a fixed depth: no k, no generator
    "qa": _ANSWERING,
    "abstention": (*_ANSWERING, "unanswerable"),
    "hallucination": ("generator",),  # the given answers are scored; nothing is retrieved
    "ragas": (*_ANSWERING, "metrics"),
    "baseline": (*_ANSWERING, "unanswerable"),
}


class EvalConfigError(ValueError):
    """A suite/dataset/option combination that cannot run (raised before models load)."""


@dataclass(frozen=True)
class EvalConfig:
    suite: str
    data: Path
    out: Path
    fmt: DatasetFormat | None = None
    limit: int | None = None  # items (hallucination: pairs); None = all
    seed: int = 0
    generator: str = "qwen2.5-1.5b"
    embedder: str = "minilm"
    k: int = 5
    max_tokens: int = 128
    unanswerable: float = 0.5  # share of questions whose gold passage is left out
    distractors: int | None = None  # other passages indexed; None = all in the file
    metrics: tuple[str, ...] = ()  # ragas metrics; empty = all
    agreement_samples: int = 0  # sampling consistency (settings.agreement_samples); 0 = off
    # Every signal measured, also those the shipped calibration gives no weight (the answer
    # check), so that calibrations weighing them can be compared on the stored answers.
    all_signals: bool = False

    def identity(self) -> dict[str, Cell]:
        """What must match for a run directory to be resumed."""
        raw = asdict(self)
        raw.pop("out")
        if not self.agreement_samples:
            raw.pop("agreement_samples")  # run directories from before it still resume
        if not self.all_signals:
            raw.pop("all_signals")
        raw["data"] = str(Path(self.data).resolve())
        raw["metrics"] = ",".join(self.metrics)
        return raw


@dataclass(frozen=True)
class EvalPlan:
    config: EvalConfig
    dataset: EvalDataset
    items: list[EvalItem]  # sampled; for abstention some marked unanswerable
    corpus: list[Passage]  # what gets indexed
    halu: list[HaluItem]

    def info(self) -> DatasetInfo:
        n = len(self.halu) if self.config.suite == "hallucination" else len(self.items)
        return DatasetInfo(
            path=str(self.config.data),
            format=self.dataset.format,
            items=n,
            passages=len(self.corpus),
            seed=self.config.seed,
            limit=self.config.limit,
        )


@dataclass(frozen=True)
class Exclusions:
    squad: frozenset[str] = frozenset()
    halueval: frozenset[str] = frozenset()


def calibration_exclusions() -> Exclusions:
    """The ids every shipped calibration sampled (`<generator>.exclude.json` beside it)."""
    from importlib import resources

    folder = resources.files("verirag.evaluators").joinpath("calibration")
    squad: set[str] = set()
    halueval: set[str] = set()
    for entry in folder.iterdir():
        if entry.name.endswith(".exclude.json"):
            ids = json.loads(entry.read_text())
            squad.update(ids.get("squad", ()))
            halueval.update(ids.get("halueval", ()))
    return Exclusions(frozenset(squad), frozenset(halueval))


def plan(config: EvalConfig) -> EvalPlan:
    """Load, validate and sample the data for `config.suite`; imports no model code."""
    if config.suite not in SUITES:
        raise EvalConfigError(f"unknown suite '{config.suite}'; choose from {', '.join(SUITES)}")
    if config.limit is not None and config.limit < 1:
        raise EvalConfigError("--limit must be at least 1")
    if not 0.0 <= config.unanswerable < 1.0:
        raise EvalConfigError("--unanswerable must be in [0, 1)")
    dataset = load_eval_dataset(config.data, config.fmt)
    # Items a shipped calibration was fitted on are never reported on.
    excluded = calibration_exclusions()
    suite = config.suite
    if suite == "hallucination":
        if not dataset.halu:
            raise EvalConfigError(
                f"{config.data}: the hallucination suite needs labelled answers "
                f"(HaluEval-style JSONL); this is {dataset.format} data"
            )
        kept = [h for h in dataset.halu if h.pair_id not in excluded.halueval]
        halu = sample_halu(kept, config.limit, config.seed)
        return EvalPlan(config, dataset, [], [], halu)
    if not dataset.items:
        raise EvalConfigError(
            f"{config.data}: the {suite} suite needs questions; {dataset.format} data has none"
        )
    items = sample_items(
        [i for i in dataset.items if i.item_id not in excluded.squad], config.limit, config.seed
    )
    if suite in NEEDS_ANSWERS and not any(i.answers for i in items):
        raise EvalConfigError(
            f"{config.data}: the {suite} suite needs gold answers; "
            f"{dataset.format} data has none (use SQuAD-format or JSONL with 'answers')"
        )
    if not dataset.passages:
        raise EvalConfigError(
            f"{config.data}: no passages to index ({dataset.format} data without contexts)"
        )
    if suite == "retrieval" and not any(i.relevant for i in items):
        raise EvalConfigError(f"{config.data}: no question has a relevant passage to find")
    corpus = _corpus(dataset.passages, items, config)
    if suite in UNANSWERABLE_SUITES and config.unanswerable > 0:
        corpus, items = leave_out_gold(corpus, items, config.unanswerable, config.seed)
        if all(i.answerable for i in items):
            raise EvalConfigError(
                f"{config.data}: no question became unanswerable (none has a gold passage)"
            )
    if suite == "ragas":
        items = [i for i in items if i.answerable and i.answers]
    return EvalPlan(config, dataset, items, corpus, [])


def _corpus(passages: list[Passage], items: list[EvalItem], config: EvalConfig) -> list[Passage]:
    """The sampled questions' gold passages plus `distractors` others (seeded), or all."""
    if config.distractors is None:
        return list(passages)
    import random

    gold = set().union(*(i.relevant for i in items)) if items else set()
    others = [p for p in passages if p.pid not in gold]
    rng = random.Random(config.seed + 1)
    chosen = {p.pid for p in rng.sample(others, min(config.distractors, len(others)))}
    return [p for p in passages if p.pid in gold or p.pid in chosen]


R = TypeVar("R")


@dataclass
class ItemLog(Generic[R]):
    """`items.jsonl`: one JSON line per finished item; the last record per id wins.

    A line cut short by a crash is ignored (the item is simply evaluated again).
    """

    path: Path
    decode: Callable[[dict[str, Any]], R]
    done: dict[str, R] = field(default_factory=dict)
    failed: dict[str, FailedItem] = field(default_factory=dict)

    def load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line
                item_id = raw["id"]
                if raw.get("ok"):
                    self.done[item_id] = self.decode(raw["record"])
                    self.failed.pop(item_id, None)
                else:
                    self.failed[item_id] = FailedItem(item_id, raw["stage"], raw["error"])

    def _append(self, raw: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(raw, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def record(self, item_id: str, record: R) -> None:
        self._append({"id": item_id, "ok": True, "record": asdict(record)})  # type: ignore[call-overload]
        self.done[item_id] = record
        self.failed.pop(item_id, None)

    def fail(self, item_id: str, stage: str, error: str) -> None:
        self._append({"id": item_id, "ok": False, "stage": stage, "error": error})
        self.failed[item_id] = FailedItem(item_id, stage, error)


def prepare_run_dir(config: EvalConfig) -> bool:
    """Create `out` or check it belongs to the same run; True when resuming."""
    config_file = config.out / "config.json"
    identity = config.identity()
    if config_file.exists():
        previous = json.loads(config_file.read_text(encoding="utf-8"))
        if previous != identity:
            changed = sorted(k for k in identity if previous.get(k) != identity[k])
            raise EvalConfigError(
                f"{config.out} holds a run with other settings ({', '.join(changed)} differ); "
                "choose another --out, or start it again with the same options to resume"
            )
        return True
    config.out.mkdir(parents=True, exist_ok=True)
    tmp = config_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(identity, indent=2) + "\n")
    tmp.replace(config_file)
    return False


def run_items(
    items: Sequence[Any],
    key: Callable[[Any], str],
    work: Callable[[Any], R],
    log: ItemLog[R],
    *,
    stage: str,
    progress: bool = True,
) -> Iterator[tuple[str, R]]:
    """Evaluate the items not yet in `log`; yields (id, record) for each newly finished one."""
    todo = [i for i in items if key(i) not in log.done]
    bar = _progress(len(items), len(items) - len(todo), stage, progress)
    try:
        for item in todo:
            item_id = key(item)
            try:
                record = work(item)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # keep going; the failure is reported, not averaged in
                log.fail(item_id, stage, f"{type(exc).__name__}: {exc}"[:1000])
            else:
                log.record(item_id, record)
                yield item_id, record
            bar.update(1)
    finally:
        bar.close()


class _Bar:
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


def _progress(total: int, done: int, stage: str, enabled: bool) -> Any:
    if not enabled:
        return _Bar()
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=stage, unit="item", dynamic_ncols=True)


def summarise(
    config: EvalConfig, plan_: EvalPlan, result: SuiteResult, seconds: float
) -> RunSummary:
    return RunSummary(
        suite=config.suite,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        wall_seconds=round(seconds, 3),
        dataset=plan_.info(),
        config={k: v for k, v in config.identity().items() if k not in ("data", "suite")},
        result=result,
    )


def failed_list(log: ItemLog[Any], ids: Sequence[str]) -> list[FailedItem]:
    wanted = set(ids)
    return [f for i, f in log.failed.items() if i in wanted and i not in log.done]


def timer() -> Callable[[], float]:
    started = time.perf_counter()
    return lambda: time.perf_counter() - started
