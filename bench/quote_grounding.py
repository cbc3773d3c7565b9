"""Does quoting the sentence a claim rests on add to the own-answer confidence?

Issue 14's first candidate signal, measured as it words it: the model quotes the sentence that
supports each claim; the quote is found in the sources, exactly and then fuzzily; and the judge
reads only what was found. For each own answer the calibration stored with its sources
(`evaluators/calibration/signals/<generator>.json`, `own`), each claim is handled in turn:

1. The generator is given the answer prompt's system message and sources, then
   `prompts/quote_v1.txt` with the question and the claim; it replies greedily, on one line.
2. The reply is found in the sources (`find_quote`). A window is one source sentence or two
   adjacent ones, and its share is the part of the reply's characters that the window holds,
   in order. A verbatim quote scores 1; a made-up one scores what it shares by chance.
3. The judge (the pipeline's prompt and yes/no reading) reads the window alone. It reads the
   source's words, not the model's quote, so a quote the model invented cannot vouch for its
   claim.

The answer gets two candidate signals: `quote_match`, its weakest claim's share, and
`quote_judge`, its weakest claim's P(supported) (`verifier.weakest_judged`). A claim with no
window found is undecided.

`measure` needs the generator (resumable). `compare` needs none. The own answers are split
into the calibration's folds (stratified, `--folds`, `--seed`). Each answer's logprob
composite comes from weights fitted without its fold (`fit_parts`), and the own-answer model
is refitted leaving one fold out at a time, over the signals the shipped model weighs, with
and without each candidate, and with `quote_judge` in `support`'s place. The left-out
predictions are pooled with paired bootstrap intervals (`bench/direct_signal.py`'s
`compare`). A candidate earns its place at a gain of MIN_GAIN; one in support's place earns
it at no loss.

    python bench/quote_grounding.py measure --generator qwen2.5-1.5b --out quote-15b.jsonl
    python bench/quote_grounding.py compare --generator qwen2.5-1.5b --features quote-15b.jsonl

These answers are the ones the shipped calibration was fitted on, not evaluation runs, and
they lack the reranker's P(relevant): `bench/rests_gain.py` measures the control, built into
the verifier as the rests judge, on fresh evaluation runs that record every signal. The
candidate's gain is out of fold. The figure labelled `shipped` is not: its model was refitted
on evaluation runs, but its logprob weights were fitted on these answers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import pairwise
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.direct_signal import compare, print_figures, read_jsonl, weighed
from verirag.evaluators.alignment import content_stems, rests_on_sources, sentence_spans
from verirag.evaluators.claims import strip_citations
from verirag.evaluators.confidence import LogprobConfidence
from verirag.evaluators.decision import Thresholds
from verirag.evaluators.verifier import weakest_judged
from verirag.pipeline.evaluation.calibrate import CalibrationData, HeldOutAnswer, OwnAnswer
from verirag.pipeline.evaluation.calibration_models import MIN_GAIN, fit_parts
from verirag.pipeline.evaluation.calibration_run import packaged_calibration_path

CANDIDATES = ("quote_match", "quote_judge", "rests_judge")
REPLACES = {"quote_judge": "support", "rests_judge": "support"}
PROMPT = Path(__file__).resolve().parent / "prompts" / "quote_v1.txt"
QUOTE_TOKENS = 96  # a long source sentence; the reply stops at its first line break
_LEAD = re.compile(r"^\s*(?:sentence|quote)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’«»`"


@dataclass(frozen=True)
class Found:
    """Where a quote stands in the sources: source `source` (0-based), characters
    [start, end) of its text, and the share of the quote's characters the span holds."""

    source: int
    start: int
    end: int
    share: float


def cleaned(reply: str) -> str:
    """The quote in a reply: its first line, without a leading label, citation marks or
    the quotation marks a model wraps a quote in."""
    line = reply.strip().split("\n", 1)[0]
    return strip_citations(_LEAD.sub("", line)).strip().strip(_QUOTES).strip()


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def share_in(quote: str, window: str) -> float:
    """The share of `quote`'s characters that `window` holds in order (case and spacing
    ignored): 1 for a verbatim quote, whatever else the window holds."""
    q, w = _normal(quote), _normal(window)
    if not q:
        return 0.0
    if q in w:
        return 1.0
    blocks = SequenceMatcher(None, q, w, autojunk=False).get_matching_blocks()
    # Stray single characters line up between any two English texts: count runs of 3+.
    return sum(b.size for b in blocks if b.size >= 3) / len(q)


def find_quote(quote: str, sources: Sequence[str]) -> Found | None:
    """The window (one sentence, or two adjacent ones) of `sources` holding the largest share
    of `quote`, the shorter on a tie, then the earlier; None for an empty quote or one that
    shares nothing."""
    if not _normal(quote):
        return None
    best: Found | None = None
    for number, text in enumerate(sources):
        spans = sentence_spans(text)
        windows = [*spans, *((a[0], b[1]) for a, b in pairwise(spans))]
        for start, end in windows:
            got = share_in(quote, text[start:end])
            if (
                best is None
                or got > best.share
                or (got == best.share and end - start < best.end - best.start)
            ):
                best = Found(number, start, end, got)
    return best if best is not None and best.share > 0 else None


def rests_window(claim: str, sources: Sequence[str]) -> Found | None:
    """The control with no quote asked: the sentence the verifier's rests judge reads
    (`alignment.rests_on_sources`); its share is of the claim's content words. None when no
    sentence shares one."""
    found = rests_on_sources(claim, sources)
    if found is None:
        return None
    number, start, end = found
    words = content_stems(claim)
    return Found(
        number, start, end, len(words & content_stems(sources[number][start:end])) / len(words)
    )


def answer_key(o: OwnAnswer) -> str:
    """An own answer's key: a question asked with its paragraph and without it gives two."""
    return o.item_id if o.indexed else f"{o.item_id}/left-out"


def signals_path(generator: str) -> Path:
    """The signals `verirag calibrate` stored for `generator`'s shipped calibration."""
    return packaged_calibration_path(generator).parent / "signals" / f"{generator}.json"


def measure(generator: str, out: Path, limit: int | None = None, window: str = "quote") -> None:
    """Append each own answer's candidate signals to `out` (JSONL), skipping those there.
    `window="rests"` measures the control: no quote is asked, and the judge reads the
    sentence `rests_window` finds (`rests_judge`)."""
    # The pipeline is imported only where a model is asked: `compare` runs without one.
    from verirag.core.settings import Settings
    from verirag.evaluators.claims import split_claims
    from verirag.evaluators.judge import LlmJudgeVerifier
    from verirag.generators.params import GenerationParams
    from verirag.pipeline.rag import RagPipeline

    data = CalibrationData.load(signals_path(generator))
    done = {r["key"] for r in read_jsonl(out)} if out.is_file() else set()
    rag = RagPipeline(Settings(generator=generator))
    gen, prompts = rag.generator(), rag.prompts
    judge = LlmJudgeVerifier(gen, prompts)
    quarantine = rag.settings.quarantine_source_instructions
    template = Template(PROMPT.read_text(encoding="utf-8").strip())
    params = GenerationParams(max_tokens=QUOTE_TOKENS, stop=("\n",))
    todo = [o for o in data.own if o.sources.texts and answer_key(o) not in done]
    with out.open("a") as sink:
        for n, o in enumerate(todo[:limit]):
            s = o.sources
            titles = s.titles if len(s.titles) == len(s.texts) else ("",) * len(s.texts)
            numbered = [(i + 1, t, x) for i, (t, x) in enumerate(zip(titles, s.texts, strict=True))]
            block = prompts.context_block(numbered, quarantine_instructions=quarantine)
            started = time.perf_counter()
            claims = split_claims(s.answer)
            # Every quote first, while the sources' KV cache holds; then the judge's short reads.
            quotes = []
            for claim in claims if window == "quote" else ():
                task = template.substitute(question=s.question, claim=claim.text)
                prompt = gen.render(prompts.after_sources(block, task))
                quotes.append(cleaned(gen.generate(prompt, params).text))
            shares: list[float] = []
            judged: list[float | None] = []
            read = 0
            for i, claim in enumerate(claims):
                found = (
                    find_quote(quotes[i], s.texts)
                    if window == "quote"
                    else rests_window(claim.text, s.texts)
                )
                shares.append(found.share if found else 0.0)
                if found is None:
                    judged.append(None)
                    continue
                text = s.texts[found.source][found.start : found.end]
                one = prompts.context_block(
                    [(found.source + 1, titles[found.source], text)],
                    quarantine_instructions=quarantine,
                )
                read += len(one)
                judged.append(judge.judge(one, s.question, claim.text).p_supported)
            row = {
                "generator": generator,
                "key": answer_key(o),
                f"{window}_match": min(shares) if shares else None,
                f"{window}_judge": weakest_judged(judged) if judged else None,
                "claims": len(claims),
                "quotes": quotes,
                f"{window}_read_chars": read,
                "whole_chars": len(block) * len(claims),
                "seconds": time.perf_counter() - started,
            }
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            if (n + 1) % 20 == 0:
                print(f"{n + 1}/{len(todo)} answers measured", flush=True)


def fold_rows(data: CalibrationData, t: Thresholds, folds: int, seed: int) -> list[HeldOutAnswer]:
    """The own answers as stored evaluation answers, each `run` its fold, each logprob
    composite scored by weights fitted on the other folds (`calibration_models.out_of_fold`'s
    split), so that no column the refit reads was fitted on the answer it predicts."""
    own = data.own
    right = np.asarray([o.correct for o in own])
    rows: list[HeldOutAnswer | None] = [None] * len(own)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(own)), right)):
        parts = fit_parts([own[i] for i in train], data.halueval, t)
        confidence = LogprobConfidence(parts.weights)
        for i in test.tolist():
            o = own[i]
            rows[i] = HeldOutAnswer(
                item_id=answer_key(o),
                run=f"fold {fold + 1}",
                correct=o.correct,
                support=min(o.claim_scores),
                lift=o.lift,
                logprob=confidence.score(o.features),
                check=o.check,
                alignment=o.alignment,
                anchor=o.anchor,
                retrieval=o.retrieval,
            )
    return [r for r in rows if r is not None]


def main() -> None:
    parser = argparse.ArgumentParser(prog="quote_grounding.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="quote and judge each own answer's claims (the model)")
    m.add_argument("--generator", default="qwen2.5-1.5b")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--limit", type=int, default=None, help="measure at most this many more")
    m.add_argument(
        "--window",
        choices=("quote", "rests"),
        default="quote",
        help="what the judge reads: the window the model's quote is found in, or (the "
        "control, no quote asked) the sentence sharing most content words with the claim",
    )
    c = sub.add_parser("compare", help="fold-out refits with and without each candidate")
    c.add_argument("--generator", default="qwen2.5-1.5b")
    c.add_argument("--features", type=Path, required=True, action="append")
    c.add_argument("--folds", type=int, default=5)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    if not signals_path(args.generator).is_file():
        raise SystemExit(f"quote_grounding.py: no stored signals for {args.generator}")
    if args.command == "measure":
        measure(args.generator, args.out, args.limit, args.window)
        return
    t = Thresholds.load(packaged_calibration_path(args.generator))
    data = CalibrationData.load(signals_path(args.generator))
    # Each file adds its signals to an answer's row (the quote run and the control's).
    by_key: dict[str, dict[str, Any]] = {}
    for path in args.features:
        for r in read_jsonl(path):
            if r["generator"] == args.generator:
                by_key.setdefault(r["key"], {}).update(r)
    read = list(by_key.values())
    rows = fold_rows(data, t, args.folds, args.seed)
    measured = {name for r in read for name in r}
    candidates = [name for name in CANDIDATES if name in measured]
    replacing = {k: v for k, v in REPLACES.items() if k in candidates}
    features = {(h.run, h.item_id): by_key[h.item_id] for h in rows if h.item_id in by_key}
    try:
        result = compare(t, rows, features, args.resamples, candidates, replacing)
    except ValueError as exc:
        raise SystemExit(f"quote_grounding.py: {exc}") from exc
    first = next(iter(result.values()))
    print(
        f"{args.generator}: {first['answers']} own answers ({first['right']} right) of the "
        f"calibration, {len(rows) - first['answers']} not measured; refit over "
        f"{', '.join(weighed(t))}, one of {args.folds} folds (seed {args.seed}) left out at a time"
    )
    print_figures(result)
    for window in ("quote", "rests"):
        had = [r for r in read if f"{window}_read_chars" in r]
        whole = sum(r["whole_chars"] for r in had)
        if whole:
            part = sum(r[f"{window}_read_chars"] for r in had) / whole
            print(f"{window}: the judge read {part:.2f} of the characters of the whole context")
    print(f"added, a candidate earns its place at a gain of {MIN_GAIN} (MIN_GAIN); in support's")
    print("place, at no loss. `shipped` is partly in-sample here (see the module's notes).")


if __name__ == "__main__":
    main()
