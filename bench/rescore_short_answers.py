"""Short answers of stored eval runs scored again as today's pipeline shows them, paired.

Today's display rules (`shown_short_answer`: a list cut to what was asked, an extraction
from the cited answer where the model named nothing new, a name, word or number cut short run
on to its end) read only the question, what the model named and the cited answer. A run
stores all three (what the model named since `AnswerRecord.short_named`; before, the short
answer it showed stands in for it), so its short answers are shown again as today's pipeline
would, with no model. Prints SQuAD EM and token F1 on the answerable questions before and
after, and the paired difference with its 95% bootstrap interval (a question two runs drew
counts once). A run answered with the rules scores the same before and after: they are
idempotent.

    python bench/rescore_short_answers.py eval-runs/v10-15b-s45 eval-runs/v10-15b-s46
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pool_eval_runs import pooled, shipped_exclusions
from verirag.core.settings import Settings
from verirag.evaluators.decision import is_abstention
from verirag.generators.short_answer import shown_short_answer
from verirag.pipeline.evaluation.metrics import exact_match, mean, token_f1
from verirag.pipeline.evaluation.suites.shared import AnswerRecord, bootstrap_intervals

IDK = Settings.model_fields["idk_sentence"].default


def shown(record: AnswerRecord) -> str:
    """The short answer today's pipeline shows for a stored answer (none for one the model
    declined), from what the model named where the run stored it, else from what it showed."""
    if is_abstention(record.text.strip(), IDK):
        return record.short_answer
    named = record.short_answer if record.short_named is None else record.short_named
    return shown_short_answer(named, record.text, record.question)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (items.jsonl)")
    args = parser.parse_args()
    answerable = [r for r in pooled(args.runs, shipped_exclusions()) if r.answerable and r.gold]
    after = [shown(r) for r in answerable]
    changed = sum(a != r.short_answer for a, r in zip(after, answerable, strict=True))
    scores = {
        "f1": (
            [r.f1 for r in answerable],
            [token_f1(a, r.gold) for a, r in zip(after, answerable, strict=True)],
        ),
        "em": (
            [r.exact_match for r in answerable],
            [exact_match(a, r.gold) for a, r in zip(after, answerable, strict=True)],
        ),
    }

    def stats(rows: list[int]) -> dict[str, float]:
        out = {}
        for name, (old, new) in scores.items():
            out[f"{name} before"] = mean([old[i] for i in rows])
            out[f"{name} after"] = mean([new[i] for i in rows])
            out[f"{name} after-before"] = out[f"{name} after"] - out[f"{name} before"]
        return out

    intervals = bootstrap_intervals(len(answerable), stats)
    print(f"{len(answerable)} answerable questions; {changed} short answers shown otherwise")
    for key, value in stats(list(range(len(answerable)))).items():
        iv = intervals.get(key)
        sign = "+" if key.endswith("-before") else ""
        band = f" [{iv.low:{sign}.3f}, {iv.high:{sign}.3f}]" if iv else ""
        print(f"{key:20s} {value:{sign}.3f}{band}")


if __name__ == "__main__":
    main()
