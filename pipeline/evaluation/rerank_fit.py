"""Fit the reranker (`retrievers/rerank.py`) on HaluEval QA, reproducibly on a CPU:
`make reranker`, or `python -m verirag.pipeline.evaluation.rerank_fit`.

HaluEval QA (HotpotQA questions, MIT) is free to train on; the SQuAD dev and SQuADShifts
files are BIG-bench's and carry a no-training canary, so they only measure the result, out of
domain. Each question's knowledge text becomes a document, padded with 0-2 other records'
knowledge so that the supporting sentences sit inside a passage of a chunk's size, as they do
in users' documents; as many distractor documents are built the same way from records whose
questions are not used. The collection is indexed with the default pipeline, each question
retrieved as `verirag search --rerank` would (`HybridRetriever.rerank_input`), and a logistic
model fitted on the candidates, labelled by whether the chunk belongs to the question's
document. The figures written into the model (`about`) are out of fold: k folds by question.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from verirag.core.settings import Settings
from verirag.pipeline.evaluation.datasets.halueval import pair_id
from verirag.pipeline.evaluation.datasets.jsonl import write_jsonl
from verirag.pipeline.evaluation.datasets.reading import jsonl_records
from verirag.pipeline.evaluation.datasets.records import Passage
from verirag.pipeline.evaluation.metrics import dedupe, mean, ndcg_at_k
from verirag.pipeline.evaluation.suites.shared import mean_intervals
from verirag.retrievers.bm25 import tokenize
from verirag.retrievers.rerank import FEATURES, MODELS_DIR, SHIPPED_FEATURES, RerankModel

COLLECTION = "rerank-fit"


@dataclass(frozen=True)
class FitQuestion:
    qid: str  # HaluEval's pair id: the same record everywhere (`pair_id`)
    question: str
    doc: str  # the document holding its knowledge


@dataclass(frozen=True)
class Ranked:
    """One question's candidates: features, document of each, and the first stage's order."""

    x: npt.NDArray[np.float64]
    docs: list[str]
    relevant: str


def build_corpus(path: Path, questions: int, seed: int) -> tuple[list[Passage], list[FitQuestion]]:
    records = [r for _, r in jsonl_records(path) if r.get("knowledge") and r.get("question")]
    unique = {pair_id(r["question"], r["knowledge"]): r for r in records}
    ids = sorted(unique)
    rng = random.Random(seed)
    rng.shuffle(ids)
    if len(ids) < 2 * questions + 4:
        raise ValueError(f"{path}: {len(ids)} records, need {2 * questions + 4}")
    asked, padding = ids[:questions], ids[questions:]

    def padded(core: str) -> str:
        parts = [core, *(unique[p]["knowledge"] for p in rng.sample(padding, rng.randint(0, 2)))]
        rng.shuffle(parts)
        return " ".join(parts)

    passages: list[Passage] = []
    out: list[FitQuestion] = []
    for i, qid in enumerate(asked):
        doc = f"d{i:05d}"
        passages.append(Passage(doc, "", padded(unique[qid]["knowledge"])))
        out.append(FitQuestion(qid, unique[qid]["question"], doc))
    for i, pid in enumerate(padding[:questions]):
        passages.append(Passage(f"x{i:05d}", "", padded(unique[pid]["knowledge"])))
    return passages, out


def retrieve_all(
    settings: Settings, passages: list[Passage], questions: list[FitQuestion], work: Path
) -> list[Ranked]:
    from verirag.pipeline.indexing import IndexingPipeline
    from verirag.pipeline.rag import RagPipeline

    source = write_jsonl(passages, work / "corpus" / "passages.jsonl")
    report = IndexingPipeline(settings).run([source], COLLECTION, prune=True)
    if report.failures:
        raise RuntimeError(f"indexing failed: {report.failures[0]}")
    rag = RagPipeline(settings)
    retriever = rag.retriever(COLLECTION)
    doc_of = {
        int(c): str(d)
        for c, d in rag.store(COLLECTION).db.execute("SELECT chunk_id, doc_id FROM chunks")
    }
    out: list[Ranked] = []
    for q in questions:
        given = retriever.rerank_input(q.question, settings.rerank_depth)
        docs = [doc_of[c.chunk_id] for c in given.candidates]
        out.append(Ranked(given.features(tokenize), docs, q.doc))
    rag.close()
    return out


def _ndcg(ranked: Ranked, scores: npt.NDArray[np.float64] | None) -> float:
    order = range(len(ranked.docs)) if scores is None else np.argsort(-scores, kind="stable")
    return ndcg_at_k(dedupe([ranked.docs[i] for i in order])[:10], [ranked.relevant], 10)


def fit_model(
    ranked: list[Ranked],
    name: str,
    folds: int,
    seed: int,
    c: float,
    features: tuple[str, ...] = SHIPPED_FEATURES,
) -> RerankModel:
    """A logistic model on every candidate of the questions whose document was retrieved,
    with out-of-fold nDCG@10 (reranked against the first stage's order) over all questions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    def fitted(rows: list[Ranked]) -> RerankModel:
        usable = [r for r in rows if r.relevant in r.docs]
        x = np.vstack([r.x for r in usable])[:, [FEATURES.index(f) for f in features]]
        y = np.concatenate([[d == r.relevant for d in r.docs] for r in usable]).astype(int)
        mean_, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        lr = LogisticRegression(C=c, max_iter=1000).fit((x - mean_) / scale, y)
        return RerankModel(
            name,
            tuple(float(w) for w in lr.coef_[0]),
            float(lr.intercept_[0]),
            tuple(float(m) for m in mean_),
            tuple(float(s) for s in scale),
            features,
        )

    order = list(range(len(ranked)))
    random.Random(seed).shuffle(order)
    fold_of = {q: i % folds for i, q in enumerate(order)}
    before: list[float] = []
    after: list[float] = []
    truth: list[int] = []
    scored: list[float] = []
    for k in range(folds):
        model = fitted([r for i, r in enumerate(ranked) if fold_of[i] != k])
        for i, r in enumerate(ranked):
            if fold_of[i] != k:
                continue
            s = model.score(r.x)
            before.append(_ndcg(r, None))
            after.append(_ndcg(r, s))
            truth.extend(int(d == r.relevant) for d in r.docs)
            scored.extend(float(v) for v in s)
    diff = [a - b for a, b in zip(after, before, strict=True)]
    intervals = mean_intervals({"gain": diff})
    final = fitted(ranked)
    about = {
        "data": "HaluEval QA (MIT), questions from HotpotQA; see pipeline/evaluation/rerank_fit.py",
        "questions": len(ranked),
        "candidates_per_question": max(len(r.docs) for r in ranked),
        "with_document_retrieved": sum(r.relevant in r.docs for r in ranked),
        "seed": seed,
        "folds": folds,
        "C": c,
        "out_of_fold": {
            "first_stage_ndcg@10": mean(before),
            "reranked_ndcg@10": mean(after),
            "gain_ndcg@10": mean(diff),
            "gain_ci95": [intervals["gain"].low, intervals["gain"].high],
            "candidate_auroc": float(roc_auc_score(truth, scored)),
        },
    }
    return RerankModel(
        final.name, final.weights, final.bias, final.mean, final.scale, features, about
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="HaluEval QA jsonl")
    parser.add_argument("--questions", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength")
    parser.add_argument("--name", default="lexical-v1")
    parser.add_argument(
        "--features",
        default=",".join(SHIPPED_FEATURES),
        help=f"comma-separated, of {','.join(FEATURES)}",
    )
    parser.add_argument("--out", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--work", type=Path, default=Path("eval-runs/rerank-fit"))
    args = parser.parse_args(argv)
    from verirag.pipeline.evaluation.datasets.shared import shared_data_file

    data = args.data or shared_data_file("halueval_qa/qa.jsonl")
    settings = Settings().with_overrides(data_dir=args.work / "state")
    settings = settings.with_overrides(model_cache=Settings().models_dir)
    started = time.perf_counter()
    passages, questions = build_corpus(data, args.questions, args.seed)
    ranked = retrieve_all(settings, passages, questions, args.work)
    features = tuple(f.strip() for f in args.features.split(",") if f.strip())
    model = fit_model(ranked, args.name, args.folds, args.seed, args.C, features)
    model.about["trained_on_ids"] = sorted(q.qid for q in questions)
    model.about["seconds"] = round(time.perf_counter() - started, 1)
    out = args.out or MODELS_DIR / f"{args.name}.json"
    model.save(out)
    oof = model.about["out_of_fold"]
    print(
        f"{out}: {len(questions)} questions; out of fold nDCG@10 "
        f"{oof['first_stage_ndcg@10']:.3f} -> {oof['reranked_ndcg@10']:.3f} "
        f"(gain {oof['gain_ndcg@10']:+.3f} [{oof['gain_ci95'][0]:+.3f}, "
        f"{oof['gain_ci95'][1]:+.3f}]), candidate AUROC {oof['candidate_auroc']:.3f}; "
        f"{model.about['seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
