from __future__ import annotations

import random

import pytest
from sklearn.metrics import roc_auc_score

from evaluators.metrics import answer_contains, auroc, exact_match, ndcg_at_k, recall_at_k, token_f1


def test_auroc_matches_scikit_learn_with_ties() -> None:
    rng = random.Random(0)
    for _ in range(20):
        labels = [rng.random() < 0.5 for _ in range(50)]
        labels[0], labels[1] = True, False
        scores = [round(rng.random(), 1) for _ in range(50)]  # many ties
        assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    with pytest.raises(ValueError):
        auroc([0.1], [True])


def test_squad_answer_metrics_hand_computed() -> None:
    assert exact_match("The Eiffel Tower.", ["eiffel tower"]) == 1.0
    assert token_f1("in Paris France", ["Paris"]) == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert token_f1("Lyon", ["Paris"]) == 0.0


def test_retrieval_metrics_hand_computed() -> None:
    assert recall_at_k(["a", "b", "c"], {"c"}, 2) == 0.0
    assert recall_at_k(["a", "b", "c"], {"c"}, 3) == 1.0
    assert ndcg_at_k(["a", "b"], {"b"}, 10) == pytest.approx(1 / 1.5849625007211562)


def test_answer_contains_whole_words_after_normalisation() -> None:
    assert answer_contains("It was completed in 1889 [1].", ["1889"])
    assert answer_contains("Designed by the company of Gustave Eiffel.", ["Gustave Eiffel"])
    assert not answer_contains("It opened in 18890.", ["1889"])  # not a whole word
    assert not answer_contains("Paris", ["the"])  # an answer that normalises to nothing
    assert not answer_contains("Paris", [])
