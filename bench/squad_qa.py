"""SQuAD answering through `RagPipeline.ask`: EM, token F1, answers containing a gold answer
and the decision mix, with each question's paragraph indexed among distractors, then with it
left out (unanswerable: it should be abstained on or sent to review).

    python bench/squad_qa.py [--model qwen2.5-1.5b] [--questions 40] [--distractors 80]
                             [--seed 3] [-k 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.datasets import shared_data_dir, write_jsonl
from evaluators.qa import ask_all, qa_report, squad_qa_sample
from generators.base import GenerationParams
from pipeline.indexing import IndexingPipeline
from pipeline.rag import RagPipeline
from pipeline.settings import Settings, default_data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--distractors", type=int, default=80)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()

    cache = Path(os.environ.get("VERIRAG_MODEL_CACHE", default_data_dir() / "models"))
    work = Path(tempfile.mkdtemp(prefix="verirag-squad-qa-"))
    settings = Settings(data_dir=work, model_cache=cache, generator=args.model)
    sample = squad_qa_sample(
        shared_data_dir() / "squad_v1.1_dev" / "dev-v1.1.json",
        args.questions,
        args.distractors,
        args.seed,
    )
    pipe = IndexingPipeline(settings)
    pipe.run([write_jsonl(sample.corpus, work / "with.jsonl")], "with-gold")
    pipe.run([write_jsonl(sample.distractors, work / "without.jsonl")], "without-gold")
    rag = RagPipeline(settings)
    params = GenerationParams(max_tokens=args.max_tokens)
    print(
        f"SQuAD v1.1 dev, {args.questions} questions, {args.distractors} distractors, "
        f"seed {args.seed}, k {args.k}, {rag.generator().name}, calibration "
        f"{rag.thresholds.model or 'defaults'} v{rag.thresholds.version}"
    )
    for collection in ("with-gold", "without-gold"):
        started = time.perf_counter()
        ask = partial(rag.ask, collection=collection, k=args.k, params=params)
        answers = ask_all(ask, sample.questions, progress=True)
        report = qa_report(answers, sample.questions)
        delivered_wrong = sum(
            a.decision == "answer" and not h for a, h in zip(answers, report.hits, strict=True)
        )
        print(
            f"{collection:13} {report.line()}; abstain or review {report.not_answered:.1%}; "
            f"delivered without a gold answer {delivered_wrong}; "
            f"{time.perf_counter() - started:.0f}s"
        )


if __name__ == "__main__":
    main()
