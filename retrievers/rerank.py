"""Reranking: the fused top candidates scored again by a learned model that reads the question
and each passage together.

First-stage retrievers score a passage as a bag of words (BM25, SPLADE) or one vector
(dense): none sees whether the question's words occur *together*, in one sentence or a few
words apart, which is what separates the paragraph that answers from its neighbours about
the same subject. The reranker adds those interaction features (the question's IDF-weighted
words found in the passage, in its best sentence and in its best short window; the question's
word pairs kept in order) to the three sides' scores, standardised over the candidate list,
and combines them with a logistic model fitted by `verirag.pipeline.evaluation.rerank_fit` on
HaluEval QA's question/passage pairs (HotpotQA; free to train on, unlike the BIG-bench SQuAD
files), and measured out of domain on SQuAD dev and SQuADShifts Amazon.

Why not a neural cross-encoder: none ships offline, and the one trained here from the bundled
MiniLM cost 1.1 s per query on this CPU for 20 candidates and did not learn the task from the
pairs a CPU can train on in reasonable time (bench/RESULTS.md, 2026-12-02). This one costs
milliseconds, imports no torch, and is plain numpy so it is unit-tested without models.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from verirag.core.registry import ModelError

FEATURES: tuple[str, ...] = (
    "fused",  # the first stage's fused score, standardised over the candidates
    "dense",  # cosine to the query, standardised
    "bm25",  # standardised; the list's lowest where BM25 did not find the chunk
    "splade",  # standardised; as BM25 where missing or where the collection has no SPLADE
    "coverage",  # IDF-weighted share of the question's words found in the passage
    "sentence",  # the same, in the passage's best sentence
    "window",  # the same, in its best window of WINDOW words
    "pairs",  # share of the question's adjacent word pairs found adjacent in the passage
)
WINDOW = 8  # content words (stopwords removed): about a clause
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
MODELS_DIR = Path(__file__).parent / "rerankers"

Matrix = npt.NDArray[np.float64]
Tokenizer = Callable[[list[str]], list[list[str]]]


@dataclass(frozen=True)
class RerankCandidate:
    """One first-stage candidate: its text and each side's score (None: not found there)."""

    chunk_id: int
    text: str
    fused: float
    dense: float | None = None
    bm25: float | None = None
    splade: float | None = None


def _standardised(values: Sequence[float | None]) -> npt.NDArray[np.float64]:
    """Z-scores over the list; a missing score counts as the list's lowest (the side ranked
    the chunk below its depth), a constant or empty side as 0 for all."""
    present = [v for v in values if v is not None]
    if not present:
        return np.zeros(len(values))
    low = min(present)
    x = np.array([low if v is None else v for v in values], dtype=np.float64)
    std = float(x.std())
    return (x - x.mean()) / std if std > 0 else np.zeros(len(values))


def _window_share(tokens: list[str], weight: dict[str, float], total: float) -> float:
    """The largest IDF weight of distinct question words within WINDOW consecutive tokens,
    over `total`; one pass with a sliding count."""
    best = current = 0.0
    counts: dict[str, int] = {}
    for i, term in enumerate(tokens):
        if term in weight:
            counts[term] = counts.get(term, 0) + 1
            current += weight[term] if counts[term] == 1 else 0.0
        if i >= WINDOW and (old := tokens[i - WINDOW]) in weight:
            counts[old] -= 1
            current -= weight[old] if counts[old] == 0 else 0.0
        best = max(best, current)
    return best / total


def features(
    query_terms: list[str],
    idf: dict[str, float],
    candidates: Sequence[RerankCandidate],
    tokenize: Tokenizer,
) -> Matrix:
    """The (candidates x FEATURES) matrix. `query_terms`: the question tokenized as the
    passages are (`tokenize`); `idf`: each term's inverse document frequency in the
    collection (a term the collection lacks is absent and weighs nothing)."""
    n = len(candidates)
    out = np.zeros((n, len(FEATURES)))
    if n == 0:
        return out
    out[:, 0] = _standardised([c.fused for c in candidates])
    out[:, 1] = _standardised([c.dense for c in candidates])
    out[:, 2] = _standardised([c.bm25 for c in candidates])
    out[:, 3] = _standardised([c.splade for c in candidates])
    weight = {t: idf[t] for t in set(query_terms) if idf.get(t, 0.0) > 0}
    total = sum(weight.values())
    pairs = {(a, b) for a, b in itertools.pairwise(query_terms) if a != b}
    if total <= 0:
        return out
    sentences = [[s for s in _SENTENCE_END.split(c.text) if s.strip()] or [""] for c in candidates]
    flat = tokenize([s for group in sentences for s in group])
    at = 0
    for row, group in enumerate(sentences):
        tokenized = flat[at : at + len(group)]
        at += len(group)
        words = [t for sentence in tokenized for t in sentence]
        found = set(words)
        out[row, 4] = sum(w for t, w in weight.items() if t in found) / total
        out[row, 5] = max(sum(weight.get(t, 0.0) for t in set(s)) for s in tokenized) / total
        out[row, 6] = _window_share(words, weight, total)
        if pairs:
            adjacent = set(itertools.pairwise(words))
            out[row, 7] = len(pairs & adjacent) / len(pairs)
    return out


@dataclass(frozen=True)
class RerankInput:
    """What a reranker reads for one question: its words as the passages are tokenized, their
    inverse document frequencies in the collection, and the first stage's candidates."""

    terms: list[str]
    idf: dict[str, float]
    candidates: list[RerankCandidate]

    def features(self, tokenize: Tokenizer) -> Matrix:
        return features(self.terms, self.idf, self.candidates, tokenize)


# What the shipped reranker reads: the first stage's fused score and the interaction
# features. The sides' own scores are left out on purpose: how much each side deserves is a
# property of the domain (BM25 is strong on HotpotQA's entity-laden questions, weaker on
# SQuAD's), fixed by the fusion, which was chosen on SQuAD and confirmed on Amazon; a fit
# that re-weighs them on HaluEval lost 0.008 nDCG@10 on SQuAD (bench/RESULTS.md).
SHIPPED_FEATURES: tuple[str, ...] = ("fused", "coverage", "sentence", "window", "pairs")


@dataclass(frozen=True)
class RerankModel:
    """A logistic model over some of `FEATURES`:
    score = bias + weights . (x[features] - mean) / scale.

    `about` records how it was fitted (data, sizes, seed, out-of-fold figures), so that a
    shipped model says what it is."""

    name: str
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    features: tuple[str, ...] = FEATURES
    about: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown or not self.features:
            raise ValueError(
                f"reranker '{self.name}' reads features {list(self.features)}; this verirag "
                f"computes {list(FEATURES)}: fit it again (`make reranker`)"
            )
        if not len(self.weights) == len(self.mean) == len(self.scale) == len(self.features):
            raise ValueError(f"reranker '{self.name}': one weight, mean and scale per feature")

    @property
    def columns(self) -> list[int]:
        return [FEATURES.index(f) for f in self.features]

    def score(self, x: Matrix) -> npt.NDArray[np.float64]:
        """Scores of the rows of a (candidates x FEATURES) matrix."""
        z = (x[:, self.columns] - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(z @ np.asarray(self.weights) + self.bias, dtype=np.float64)

    def save(self, path: Path) -> None:
        body = {
            "name": self.name,
            "features": list(self.features),
            "weights": list(self.weights),
            "bias": self.bias,
            "mean": list(self.mean),
            "scale": list(self.scale),
            "about": self.about,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RerankModel:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            raw["name"],
            tuple(float(w) for w in raw["weights"]),
            float(raw["bias"]),
            tuple(float(m) for m in raw["mean"]),
            tuple(float(s) for s in raw["scale"]),
            tuple(raw["features"]),
            dict(raw.get("about", {})),
        )


def model_path(spec: str) -> Path:
    """A shipped reranker by name (`lexical-v1`), or a path to a fitted model's JSON."""
    path = Path(spec)
    if path.suffix == ".json":
        return path
    return MODELS_DIR / f"{spec}.json"


@lru_cache(maxsize=8)
def load_reranker(spec: str) -> RerankModel:
    """The reranker `spec` names; `ModelError` (HTTP 503, CLI exit 4) when there is none or
    its file cannot be read: a setting that names it is the server's, not the request's."""
    path = model_path(spec)
    if not path.is_file():
        shipped = sorted(p.stem for p in MODELS_DIR.glob("*.json"))
        raise ModelError(
            f"no reranker '{spec}': neither a shipped one ({', '.join(shipped) or 'none'}) "
            "nor a .json file; fit one with `make reranker`"
        )
    try:
        return RerankModel.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"reranker file {path} cannot be read: {exc}") from exc


def rerank(model: RerankModel, given: RerankInput, tokenize: Tokenizer) -> list[tuple[int, float]]:
    """The candidates by the model's score, best first; ties keep the first stage's order."""
    scores = model.score(given.features(tokenize))
    order = sorted(range(len(given.candidates)), key=lambda i: (-scores[i], i))
    return [(given.candidates[i].chunk_id, float(scores[i])) for i in order]
