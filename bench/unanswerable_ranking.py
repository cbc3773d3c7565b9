"""How well stored answers' signals tell an unanswerable question (its paragraph left out)
from an answerable one, read as a ranking: the most any cut on them could withhold.

Issue 14 asks that unanswerable questions be withheld with precision and recall of at least
0.9. `answer_bound` shows that withholding every answer not delivered cannot reach it while
delivered answers stay 95% right. This reads the other way of meeting it: a decision that
withholds a question because no source answers it (ABSTAIN), told apart from one that
answers wrongly. For each score it prints the AUROC for "unanswerable" and the best
precision at recall >= 0.9 and 0.8, the cut read in hindsight (a diagnostic: no cut chosen
on the items it is read on is a result), with 95% bootstrap intervals over questions:
- `1 - confidence`: the shipped decision's score (an abstention carries 0);
- `1 - retrieval`: the reranker's P(relevant) of the sources read (an abstention, which has
  no signals, counts as 0);
- `out-of-fold blend`: a logistic model over those two, the other signals every run stores
  (support, logprob, anchor, alignment, lift) and whether it abstained, fitted on 4 of 5
  folds and scoring the fifth (`FOLDS`, `SEED`);
- `out-of-fold trees`: gradient-boosted trees over the same, the same folds: whether a
  blend that is not linear finds more.
The intervals resample questions with their scores fixed: they do not refit the blends.
No model runs; the runs' item logs are pooled by id as `pool_eval_runs.py` pools them.

    python bench/unanswerable_ranking.py eval-runs/v9-05b-s94 eval-runs/v9-05b-s95
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pool_eval_runs import pooled, shipped_exclusions
from verirag.pipeline.evaluation.metrics import auroc, binary_prf, pr_curve
from verirag.pipeline.evaluation.report.formatting import format_cell, format_interval
from verirag.pipeline.evaluation.suites.shared import AnswerRecord, bootstrap_intervals

FOLDS = 5
SEED = 0
RECALLS = (0.9, 0.8)
BLENDED = ("confidence", "retrieval", "support", "logprob", "anchor", "alignment", "lift")


def precision_at_recall(scores: Sequence[float], labels: Sequence[bool], recall: float) -> float:
    """The highest precision of any cut on `scores` that keeps recall at least `recall`."""
    precision, reached, _ = pr_curve(scores, labels)
    return max(p for p, r in zip(precision, reached, strict=True) if r >= recall)


def _signal(record: AnswerRecord, name: str) -> float:
    if name == "confidence":
        return record.confidence
    value = record.signals.get(name)
    # An abstention has no signals: it read nothing it would answer from.
    return 0.0 if value is None else float(value)


def features(records: Sequence[AnswerRecord]) -> np.ndarray:
    """Each answer's blended signals, and 1 where it abstained."""
    return np.array(
        [[_signal(r, n) for n in BLENDED] + [float(r.decision == "abstain")] for r in records]
    )


def out_of_fold_blend(
    records: Sequence[AnswerRecord], model: ClassifierMixin | None = None
) -> list[float]:
    """P(unanswerable) of each answer from a model (logistic unless given) that never saw it."""
    labels = np.array([not r.answerable for r in records])
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    model = model if model is not None else LogisticRegression(C=1.0, max_iter=1000)
    scores = cross_val_predict(model, features(records), labels, cv=folds, method="predict_proba")
    return [float(s) for s in scores[:, 1]]


def rankings(records: Sequence[AnswerRecord]) -> dict[str, list[float]]:
    """Each score for 'unanswerable', higher meaning more likely left out."""
    return {
        "1 - confidence": [1.0 - r.confidence for r in records],
        "1 - retrieval": [1.0 - _signal(r, "retrieval") for r in records],
        "out-of-fold blend": out_of_fold_blend(records),
        "out-of-fold trees": out_of_fold_blend(
            records,
            HistGradientBoostingClassifier(
                max_depth=3, learning_rate=0.05, max_iter=200, random_state=SEED
            ),
        ),
    }


def figures(scores: Sequence[float], labels: Sequence[bool]) -> dict[str, float]:
    out = {"auroc": auroc(scores, labels)}
    for recall in RECALLS:
        out[f"precision at recall {recall}"] = precision_at_recall(scores, labels, recall)
    return out


def resampled(
    scores: Sequence[float], labels: Sequence[bool]
) -> Callable[[list[int]], dict[str, float]]:
    def statistics(rows: list[int]) -> dict[str, float]:
        return figures([scores[i] for i in rows], [labels[i] for i in rows])

    return statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (items.jsonl)")
    args = parser.parse_args()
    records = pooled(args.runs, shipped_exclusions())
    labels = [not r.answerable for r in records]
    withheld = [r.decision != "answer" for r in records]
    abstained = [r.decision == "abstain" for r in records]
    print(f"{len(records)} questions, {sum(labels)} unanswerable (paragraph left out)")
    for name, decided in (("withheld (not delivered)", withheld), ("abstained", abstained)):
        prf = binary_prf(decided, labels)
        print(f"shipped decision, {name}: precision {prf.precision:.3f}, recall {prf.recall:.3f}")
    for name, scores in rankings(records).items():
        point = figures(scores, labels)
        intervals = bootstrap_intervals(len(records), resampled(scores, labels))
        cells = [
            f"{key} {format_cell(value)} {format_interval(intervals.get(key))}".rstrip()
            for key, value in point.items()
        ]
        print(f"{name:18s} " + "; ".join(cells))


if __name__ == "__main__":
    main()
