"""The notebooks run top to bottom with the real bundled models, so they never rot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.integration

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# The quickstart asserts on its answer, so it gets a model that answers well enough; the
# evaluation notebook only has to run, so its many answers come from the smallest model.
GENERATORS = {"01_quickstart.ipynb": "qwen2.5-0.5b", "02_evaluation.ipynb": "smollm2-135m"}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_notebook_runs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)  # type: ignore[no-untyped-call]
    # The kernel is a child process: it inherits this environment (offline, the test
    # model cache, a small generator) and must be this interpreter.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VERIRAG_MODEL_CACHE", str(MODEL_CACHE))
    monkeypatch.setenv("VERIRAG_GENERATOR", GENERATORS[name])
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOKS.parent))
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    executed = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in executed)
