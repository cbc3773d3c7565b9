"""The real `verirag` command on a small mixed corpus: outcomes, exit codes, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MODEL_CACHE
from tests.helpers import make_docx, make_pdf

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verirag.pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "VERIRAG_DATA_DIR": str(tmp_path / "data"),
        "VERIRAG_MODEL_CACHE": str(MODEL_CACHE),
        "COLUMNS": "200",
    }


def test_index_search_ls_stats_delete(tmp_path: Path, env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide.md").write_text(
        "# Espresso\nPull a shot at nine bars for about 25 seconds.\n\n"
        "# Milk\nSteam milk to 60 degrees Celsius.\n"
    )
    make_pdf(
        docs / "sub" / "report.pdf",
        ["Quarterly revenue grew by 12 percent.", "Costs of the Lisbon office fell."],
    )
    make_docx(docs / "sub" / "minutes.docx", ["The board approved the new solar farm."])
    (docs / "page.html").write_text("<h1>Tides</h1><p>The Moon's gravity drives tides.</p>")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "notes.txt").write_bytes("résumé".encode("latin-1"))

    result = _cli(env, "index", str(docs), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["failed"]) == (4, 2)
    reasons = {Path(f["source"]).name: f["reason"] for f in summary["failures"]}
    assert "unreadable PDF" in reasons["broken.pdf"]
    assert "UTF-8" in reasons["notes.txt"]

    strict = _cli(env, "index", str(docs), "--strict", "--json")
    assert strict.returncode == 1
    assert json.loads(strict.stdout)["unchanged"] == 4

    hits = json.loads(_cli(env, "search", "which office had lower costs?", "--json").stdout)
    assert hits[0]["source"].endswith("report.pdf")
    assert hits[0]["pages"] == [1, 2]  # one small chunk spans both pages
    hits = json.loads(_cli(env, "search", "how long to pull an espresso shot", "--json").stdout)
    assert hits[0]["headings"] == ["Espresso"]
    human = _cli(env, "search", "tides and the moon", "-k", "2")
    assert human.returncode == 0 and "page.html" in human.stdout

    listing = json.loads(_cli(env, "ls", "--json").stdout)
    assert len(listing) == 4
    stats = json.loads(_cli(env, "stats", "--json").stdout)
    assert stats["documents"] == 4 and stats["vectors"] == stats["chunks"]
    assert stats["embedder"] == "minilm" and stats["dim"] == 384

    gone = _cli(env, "delete", str(docs / "sub"), "--json")
    assert gone.returncode == 0, gone.stderr
    assert len(json.loads(gone.stdout)) == 2
    assert json.loads(_cli(env, "stats", "--json").stdout)["documents"] == 2


def test_bad_input_exits_non_zero_with_precise_message(env: dict[str, str], tmp_path: Path) -> None:
    unknown = _cli(env, "search", "anything", "-c", "nothing-here")
    assert unknown.returncode == 2
    assert "unknown collection 'nothing-here'" in unknown.stderr
    empty = _cli(env, "search", "   ")
    assert empty.returncode == 2 and "query is empty" in empty.stderr
    missing = _cli(env, "index", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    bad_name = _cli(env, "index", str(tmp_path), "-c", "a/b")
    assert bad_name.returncode == 2 and "invalid collection name" in bad_name.stderr
    bad_setting = _cli(env, "index", str(tmp_path), "--chunk-overlap", "500")
    assert bad_setting.returncode == 2 and "chunk_overlap" in bad_setting.stderr
    bad_model = _cli(env, "index", str(tmp_path), "--embedder", "no-such-model")
    assert bad_model.returncode == 4 and "unknown model 'no-such-model'" in bad_model.stderr


def test_demo_indexes_pydoc_topics_and_searches(env: dict[str, str]) -> None:
    result = _cli(env, "demo")
    assert result.returncode == 0, result.stderr
    assert "collection demo:" in result.stdout
    assert "[1]" in result.stdout
