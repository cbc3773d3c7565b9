"""Where answerable questions are lost, read from the sources each answer was given and the
answer itself; no model. It says which remedy could help: retrieval helps only questions
whose gold answer no source held, fewer or reordered sources only those answered from
another source; the rest are the reader's.

Places, in the report's order:
- `right`: the cited answer holds a gold answer (the suites' `contains`).
- `not_retrieved`: no source the model read holds a gold answer.
- `declined`: a source held one, and the answer was withheld without a claim (abstain).
- `misread_source`: the short answer stands in a source that holds a gold answer: the right
  passage, another span of it.
- `other_source`: the short answer stands only in sources without a gold answer.
- `no_source`: the short answer is empty or stands in no source word for word (a paraphrase,
  a number written out, or text the sources do not hold).

Sources are compared with SQuAD's normalisation, as `contains` compares answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from verirag.pipeline.evaluation.metrics import answer_contains, normalize_answer
from verirag.pipeline.evaluation.runs import Cell, Table
from verirag.pipeline.evaluation.suites.shared import AnswerRecord

PLACES: dict[str, str] = {
    "right": "right (the cited answer holds gold)",
    "not_retrieved": "not retrieved (no source read holds gold)",
    "declined": "declined, although a source held gold",
    "misread_source": "misread its source (short answer in a source holding gold)",
    "other_source": "read another source (short answer only in sources without gold)",
    "no_source": "in no source (empty, a paraphrase, or text no source holds)",
}
DECIDED = ("answer", "review", "abstain")


def gold_rank(record: AnswerRecord) -> int | None:
    """The prompt position (0 = first) of the first source holding a gold answer."""
    for rank, source in enumerate(record.contexts):
        if answer_contains(source, record.gold):
            return rank
    return None


def where_lost(record: AnswerRecord) -> str:
    """The key in `PLACES` of an answerable question's answer."""
    if not record.answerable:
        raise ValueError("only answerable questions are lost somewhere")
    if record.contains:
        return "right"
    holding = [answer_contains(source, record.gold) for source in record.contexts]
    if not any(holding):
        return "not_retrieved"
    if record.decision == "abstain":
        return "declined"
    short = record.short_answer
    if not normalize_answer(short):
        return "no_source"
    stands = [answer_contains(source, [short]) for source in record.contexts]
    if any(h and s for h, s in zip(holding, stands, strict=True)):
        return "misread_source"
    return "other_source" if any(stands) else "no_source"


def losses(answerable: Sequence[AnswerRecord]) -> tuple[dict[str, list[float]], list[Table]]:
    """Samples `lost/<place>` (1 for each answerable question in that place, else 0: their
    means are the shares, bootstrapped like every other mean), and two tables: where the
    questions went, by decision, and how often the answer is right by the position of the
    first source holding gold. Nothing without answerable questions."""
    if not answerable:
        return {}, []
    places = [where_lost(r) for r in answerable]
    samples = {f"lost/{p}": [float(x == p) for x in places] for p in PLACES}
    decided = Counter(zip(places, (r.decision for r in answerable), strict=True))
    rows: list[list[Cell]] = []
    for place, label in PLACES.items():
        counts = [decided[(place, d)] for d in DECIDED]
        rows.append([label, sum(counts), sum(counts) / len(places), *counts])
    ranks = [gold_rank(r) for r in answerable]
    by_rank: list[list[Cell]] = []
    for rank in sorted(set(ranks), key=lambda x: (x is None, x or 0)):
        right = [r.contains for r, k in zip(answerable, ranks, strict=True) if k == rank]
        label = "none" if rank is None else f"[{rank + 1}]"
        by_rank.append([label, len(right), sum(right) / len(right)])
    return samples, [
        Table(
            "Where answerable questions are lost (intervals under lost/ in the metrics)",
            ["where", "questions", "share", "delivered", "review", "withheld"],
            rows,
        ),
        Table(
            "The first source holding a gold answer, in the order the model read them",
            ["source", "questions", "right"],
            by_rank,
        ),
    ]
