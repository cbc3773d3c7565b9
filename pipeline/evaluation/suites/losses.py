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
    if gold_rank(record) is None:
        return "not_retrieved"
    if record.decision == "abstain":
        return "declined"
    short = record.short_answer
    if not normalize_answer(short):
        return "no_source"
    holding = [answer_contains(source, record.gold) for source in record.contexts]
    stands = [answer_contains(source, [short]) for source in record.contexts]
    if any(h and s for h, s in zip(holding, stands, strict=True)):
        return "misread_source"
    return "other_source" if any(stands) else "no_source"


def loss_samples(answerable: Sequence[AnswerRecord]) -> dict[str, list[float]]:
    """`lost/<place>`: 1 for each answerable question in that place, else 0 (their means
    are the shares; the suites bootstrap them like every other mean)."""
    if not answerable:
        return {}
    places = [where_lost(r) for r in answerable]
    return {f"lost/{p}": [float(x == p) for x in places] for p in PLACES}


def loss_tables(answerable: Sequence[AnswerRecord]) -> list[Table]:
    """Where the answerable questions went, by decision; and how often the reader got it
    right by the position of the first source holding gold; none without answerable ones."""
    if not answerable:
        return []
    places = Counter((where_lost(r), r.decision) for r in answerable)
    n = len(answerable)
    rows: list[list[Cell]] = []
    for place, label in PLACES.items():
        count = sum(places[(place, d)] for d in DECIDED)
        rows.append([label, count, count / n, *(places[(place, d)] for d in DECIDED)])
    ranks: Counter[tuple[int | None, bool]] = Counter(
        (gold_rank(r), r.contains) for r in answerable
    )
    positions = sorted({rank for rank, _ in ranks}, key=lambda x: (x is None, x or 0))
    by_rank: list[list[Cell]] = []
    for rank in positions:
        total = ranks[(rank, True)] + ranks[(rank, False)]
        by_rank.append(
            ["none" if rank is None else f"[{rank + 1}]", total, ranks[(rank, True)] / total]
        )
    return [
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
