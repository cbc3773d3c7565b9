"""The reranker's P(relevant) of the best source, measured again for answers already stored.

`Answer.retrieval_confidence` (signal `retrieval`) was added after some evaluation runs were
made. It depends on retrieval alone, not on the generator, so it can be measured again for
a stored run without a model: each question is searched again in the run's own index
(`RUN/state`) with today's retriever and reranker, and the value is written into the answer's
stored signals only where the sources found again are exactly the sources the answer was
written from (`contexts`); elsewhere it stays unknown, and the count is printed.

    python bench/remeasure_retrieval.py eval-runs/v11-15b-s58 [eval-runs/...]

The run's items.jsonl is rewritten (the original kept as items.jsonl.orig); a second pass
changes nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verirag.evaluators.confidence import sigmoid
from verirag.pipeline.evaluation.suites.shared import COLLECTION, stored_run_settings
from verirag.pipeline.rag import RagPipeline


def remeasure(run: Path) -> tuple[int, int, int]:
    """(answers, measured, sources not found again) for the run in directory `run`."""
    settings = stored_run_settings(run)
    if not settings.rerank:
        raise SystemExit("the rerank setting is off: there is no reranker score to read")
    rag = RagPipeline(settings)
    floor = settings.relevance_floor
    lines = (run / "items.jsonl").read_text().splitlines()
    out, measured, differ = [], 0, 0
    for line in lines:
        entry = json.loads(line)
        record = entry.get("record")
        if entry.get("ok") and record is not None:
            hits = rag.search(record["question"], COLLECTION, k=settings.top_k)
            relevant = [h for h in hits if h.dense_score is not None and h.dense_score >= floor]
            if [h.text for h in relevant] == record["contexts"] and relevant:
                record["signals"]["retrieval"] = sigmoid(max(h.score for h in relevant))
                measured += 1
            else:
                record["signals"]["retrieval"] = None
                differ += bool(relevant or record["contexts"])
        out.append(json.dumps(entry))
    rag.close()
    backup = run / "items.jsonl.orig"
    if not backup.exists():
        shutil.copy2(run / "items.jsonl", backup)
    tmp = run / "items.jsonl.tmp"
    tmp.write_text("\n".join(out) + "\n")
    tmp.replace(run / "items.jsonl")
    return len(lines), measured, differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    for run in parser.parse_args().runs:
        n, measured, differ = remeasure(run)
        print(
            f"{run}: {n} answers, retrieval measured again on {measured}; {differ} whose "
            "sources were not found again (left unknown)"
        )


if __name__ == "__main__":
    main()
