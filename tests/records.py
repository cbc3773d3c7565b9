"""A builder for the answer records `verirag eval` stores, for tests that need a few."""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

from verirag.pipeline.evaluation.suites.shared import AnswerRecord


def stored_answer(
    *, answerable: bool = True, contains: bool = False, decision: str = "review", **fields: Any
) -> AnswerRecord:
    """An answer record with neutral defaults (a one-claim answer to "q", gold "x",
    confidence 0.5); `fields` set any other field of `AnswerRecord`."""
    defaults: dict[str, Any] = {
        "question": "q",
        "gold": ["x"],
        "text": "t",
        "confidence": 0.5,
        "logprob_confidence": 0.5,
        "exact_match": 0.0,
        "f1": 0.0,
        "seconds": 1.0,
        "claims": 1,
        "flagged": 0,
    }
    return AnswerRecord(
        answerable=answerable, contains=contains, decision=decision, **{**defaults, **fields}
    )


def uninformative_signals(rng: random.Random) -> dict[str, float | None]:
    """Stored signals drawn whatever the answer's label (the answer check not measured): a
    test adds the one signal whose use it checks, drawn from the label."""
    return {
        "support": rng.uniform(0.6, 0.95),
        "lift": 0.1,
        "logprob": rng.uniform(0.4, 0.9),
        "check": None,
        "alignment": rng.uniform(0.3, 0.9),
        "anchor": rng.uniform(0.3, 0.9),
    }


def over_confident_signals(rng: random.Random) -> dict[str, float | None]:
    """Stored signals of a confident answer (high support and logprob) whatever its label:
    a run of them, right about half the time, is over-confident under any calibration."""
    return {
        "support": 0.95,
        "lift": 0.2,
        "logprob": rng.uniform(0.8, 1.0),
        "check": None,
        "alignment": rng.uniform(0.5, 1.0),
        "anchor": rng.uniform(0.5, 1.0),
        "retrieval": rng.uniform(0.7, 1.0),
    }


def write_eval_run(
    root: Path,
    records: dict[str, AnswerRecord],
    suite: str = "abstention",
    generator: str = "qwen2.5-1.5b",
) -> Path:
    """A `verirag eval` run directory at `root` holding `records` (item id -> record)."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"suite": suite, "generator": generator}))
    with (root / "items.jsonl").open("w") as f:
        for item_id, record in records.items():
            f.write(json.dumps({"id": item_id, "ok": True, "record": asdict(record)}) + "\n")
    return root
