"""The benchmarks read the full public data, which a clone does not carry: without it they stop
at once, naming the file and the variable that points at it, before any model loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", ["index_throughput.py", "ragas_judge.py", "json_loops.py"])
def test_bench_without_shared_data_names_the_file(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "VERIRAG_SHARED_DATA": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(BENCH / script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    missing = tmp_path / "squad_v1.1_dev" / "dev-v1.1.json"
    assert f"{script}: public evaluation data not found: {missing}" in done.stderr
    assert f"VERIRAG_SHARED_DATA={tmp_path}" in done.stderr
    assert "Traceback" not in done.stderr
