"""Every bundled model resolves offline from its package and passes its sha256 check."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MODEL_CACHE
from verirag.core.registry import REGISTRY, resolve_model, sha256_file

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_bundled_model_resolves_and_verifies(name: str) -> None:
    path = Path(resolve_model(name, MODEL_CACHE))
    model = REGISTRY[name]
    weights = path / model.weights if path.is_dir() else path
    assert weights.is_file()
    if model.layout == "parts":  # the joined file really is the pinned artifact
        assert sha256_file(weights) == model.sha256
