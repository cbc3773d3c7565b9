"""Does the judge read better against the source a claim cites than against every source?

Issue 14 lists "judging each claim against the source it cites, not the whole context" among
the candidate signals. The pipeline's judge reads every source the model was given; a claim
that cites [2] while only [1] says it is judged "supported" all the same. Here each claim of
each own answer of a stored `verirag eval abstention` run is judged again, by the run's own
generator and judge prompt, against the sources it cites alone (numbered as in the answer; a
claim citing nothing against every source, as the pipeline does), and the answer's `cited`
signal is its weakest claim's P(supported), read as the pipeline reads the whole-context
judge's (`verifier.weakest_judged`: an undecided claim at 0.5). Its sources are fewer
tokens to read, so it would also cost less.

`measure` needs the model (the run's own index; resumable). `compare` needs none: leaving one
run out at a time, the own-answer model is fitted again (`fit_logistic`) on the other runs'
answers, with `cited` added to the signals the calibration weighs and with `cited` in the
place of `support` (the whole-context judge, after its lexical checks), and the left-out
predictions are pooled (`bench/direct_signal.py`'s `compare`). A candidate earns a place at
a gain of MIN_GAIN; one in `support`'s place earns it at no loss, being cheaper.

    python bench/cited_judge.py measure eval-runs/v12-15b-s75 ... --out cited.jsonl
    python bench/cited_judge.py compare eval-runs/v12-15b-s75 ... --features cited.jsonl

Runs are read as `bench/rescore_calibrations.py` reads them: a question two runs drew counts
once, and ids the calibration excludes are left out.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.direct_signal import own_answers_again, run_cli
from verirag.evaluators.verifier import weakest_judged
from verirag.generators.context import sources_block

CANDIDATE = "cited"
REPLACES = "support"


def measure(runs: Sequence[Path], out: Path) -> None:
    """Append each run's own answers' `cited` signal to `out` (JSONL), skipping those there."""
    # The pipeline is imported only where a model is asked: `compare` runs without one.
    from verirag.evaluators.claims import split_claims
    from verirag.evaluators.judge import LlmJudgeVerifier

    with out.open("a") as sink:
        for name, rag, item_id, r, prepared in own_answers_again(runs, out):
            judge = LlmJudgeVerifier(rag.generator(), rag.prompts)
            quarantine = rag.settings.quarantine_source_instructions
            started = time.perf_counter()
            judged, read = [], 0
            for claim in split_claims(r.text):
                cited = [c for c in prepared.citations if c.number in claim.citations]
                block = (
                    sources_block(cited, rag.prompts, quarantine_instructions=quarantine)
                    if cited
                    else prepared.context_block
                )
                read += len(block)
                judged.append(judge.judge(block, r.question, claim.text).p_supported)
            row = {
                "run": name,
                "item_id": item_id,
                CANDIDATE: weakest_judged(judged),
                "claims": len(judged),
                # Characters of sources read, against the whole block once per claim.
                "read_chars": read,
                "whole_chars": len(prepared.context_block) * len(judged),
                "seconds": time.perf_counter() - started,
            }
            sink.write(json.dumps(row) + "\n")
            sink.flush()


def main() -> None:
    read = run_cli(__doc__ or "", measure, candidates=(CANDIDATE,), replacing={CANDIDATE: REPLACES})
    if read is None:
        return
    whole = sum(r["whole_chars"] for r in read)
    if whole:
        share = sum(r["read_chars"] for r in read) / whole
        print(f"sources read by the judge: {share:.2f} of the whole context's characters")
    print(f"in {REPLACES}'s place, a candidate that reads less earns it at no loss")


if __name__ == "__main__":
    main()
