"""Where answerable questions are lost, from `verirag eval abstention` item logs; no model.

Each answerable question (paragraph indexed) falls in one place, read from the sources the
model was given (in their prompt order) and its answer:

- `right`: the cited answer holds a gold answer (the suites' `contains`).
- `not retrieved`: no source the model read holds a gold answer.
- `declined`: a source held one, and the model said it does not know.
- `misread its source`: the short answer stands in the first source that holds a gold answer:
  the model read the right passage and picked another span of it.
- `read another source`: the short answer stands only in sources without a gold answer.
- `in no source`: the short answer is empty or stands in no source word for word (a
  paraphrase, a number written out, or text the sources do not hold).

Sources are compared with SQuAD's normalisation, as `contains` is. What the split says is
which remedy could help: retrieval helps only the first loss, fewer or reordered sources
only the fifth; the third and fourth are the reader's.

    python bench/answer_errors.py eval-runs/v12-15b-s75 eval-runs/v12-15b-s76 ...
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pool_eval_runs import pooled, shipped_exclusions
from verirag.pipeline.evaluation.metrics import answer_contains, normalize_answer
from verirag.pipeline.evaluation.suites.shared import AnswerRecord, mean_intervals

PLACES = (
    "right",
    "not retrieved",
    "declined",
    "misread its source",
    "read another source",
    "in no source",
)


def _stands_in(span: str, source: str) -> bool:
    """`span` occurs in `source` as whole words, both normalised (`answer_contains`)."""
    return answer_contains(source, [span])


def gold_rank(record: AnswerRecord) -> int | None:
    """The prompt position (0 = first) of the first source holding a gold answer."""
    for rank, source in enumerate(record.contexts):
        if answer_contains(source, record.gold):
            return rank
    return None


def where_lost(record: AnswerRecord) -> str:
    """One of `PLACES` for an answerable question's answer."""
    if not record.answerable:
        raise ValueError("only answerable questions are lost somewhere")
    if record.contains:
        return "right"
    rank = gold_rank(record)
    if rank is None:
        return "not retrieved"
    if record.decision == "abstain":
        return "declined"
    short = record.short_answer
    if not normalize_answer(short):
        return "in no source"
    if _stands_in(short, record.contexts[rank]):
        return "misread its source"
    if any(_stands_in(short, s) for s in record.contexts):
        return "read another source"
    return "in no source"


def table(records: Sequence[AnswerRecord]) -> list[tuple[str, int, float, float, float]]:
    """(place, count, share of answerable, 95% CI low, high) for every place."""
    places = [where_lost(r) for r in records if r.answerable]
    if not places:
        raise ValueError("no answerable question in the runs")
    samples = {p: [float(x == p) for x in places] for p in PLACES}
    intervals = mean_intervals(samples)
    counts = Counter(places)
    rows = []
    for p in PLACES:
        iv = intervals.get(p)
        share = counts[p] / len(places)
        rows.append((p, counts[p], share, iv.low if iv else share, iv.high if iv else share))
    return rows


def by_rank(records: Sequence[AnswerRecord]) -> dict[int | None, tuple[int, int]]:
    """Rank of the first source holding gold -> (answerable questions, right ones)."""
    out: dict[int | None, tuple[int, int]] = {}
    for r in records:
        if not r.answerable:
            continue
        rank = gold_rank(r)
        n, right = out.get(rank, (0, 0))
        out[rank] = (n + 1, right + int(r.contains))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (items.jsonl)")
    args = parser.parse_args()
    records = pooled(args.runs, shipped_exclusions())
    answerable = [r for r in records if r.answerable]
    print(f"{len(answerable)} answerable questions (pooled by id, shipped calibrations' out)")
    print(f"{'where':22s} {'count':>5s} {'share':>6s}  95% CI")
    for place, count, share, low, high in table(records):
        print(f"{place:22s} {count:5d} {share:6.3f}  [{low:.3f}, {high:.3f}]")
    decided = Counter((where_lost(r), r.decision) for r in answerable)
    print("by decision: " + ", ".join(f"{p} / {d} {n}" for (p, d), n in sorted(decided.items())))
    print("first source holding gold -> answerable, right:")
    ranks = by_rank(records)
    for rank in sorted(ranks, key=lambda x: (x is None, x or 0)):
        n, right = ranks[rank]
        label = "none" if rank is None else f"[{rank + 1}]"
        print(f"  {label:5s} {n:4d} {right:4d} ({right / n:.3f})")


if __name__ == "__main__":
    main()
