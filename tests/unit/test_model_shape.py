"""`model_shape`: a sentence-transformers model's output size and input limit from its files,
so a Ray driver never loads the model; any layout it cannot read gives None (load instead)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from verirag.retrievers.encoders import model_shape

ST = "sentence_transformers.models."


def _model(root: Path, modules: list[tuple[str, str, dict[str, Any]]]) -> str:
    """A model directory: the transformer's files at the root, each module's config in its
    folder."""
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"hidden_size": 384}))
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256}))
    listed = [{"idx": 0, "name": "0", "path": "", "type": ST + "Transformer"}]
    for i, (kind, sub, config) in enumerate(modules, start=1):
        (root / sub).mkdir()
        (root / sub / "config.json").write_text(json.dumps(config))
        listed.append({"idx": i, "name": str(i), "path": sub, "type": ST + kind})
    (root / "modules.json").write_text(json.dumps(listed))
    return str(root)


MEAN = {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}


def test_mean_pooling_then_normalize(tmp_path: Path) -> None:
    path = _model(tmp_path / "m", [("Pooling", "1_Pooling", MEAN), ("Normalize", "2_N", {})])
    assert model_shape(path) == (384, 256)


def test_pooling_modes_and_a_dense_layer_change_the_dimension(tmp_path: Path) -> None:
    two = {**MEAN, "pooling_mode_cls_token": True, "pooling_mode_max_tokens": False}
    assert model_shape(_model(tmp_path / "a", [("Pooling", "p", two)])) == (768, 256)
    dense = [("Pooling", "p", MEAN), ("Dense", "d", {"in_features": 384, "out_features": 128})]
    assert model_shape(_model(tmp_path / "b", dense)) == (128, 256)


def test_what_it_cannot_read_is_none(tmp_path: Path) -> None:
    unknown = _model(tmp_path / "a", [("Pooling", "p", MEAN), ("LayerNorm", "ln", {})])
    assert model_shape(unknown) is None
    missing = _model(tmp_path / "b", [("Pooling", "p", MEAN)])
    (Path(missing) / "sentence_bert_config.json").unlink()
    assert model_shape(missing) is None
    assert model_shape(str(tmp_path / "nowhere")) is None
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "modules.json").write_text("{not json")
    assert model_shape(str(tmp_path / "junk")) is None
