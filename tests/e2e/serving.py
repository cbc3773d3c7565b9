"""The real `verirag serve` the end-to-end tests share: the bundled models (MiniLM,
SmolLM2-135M) over a tiny corpus in two collections, `a` and `b`, where `b` holds a canary
string that no request made with a key for `a` may ever bring back. One server for the whole
session (models load once); answers are kept short."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import MODEL_CACHE
from verirag.core.records import Answer, ClaimResult, Timings
from verirag.core.settings import Settings
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.review import ReviewQueue

SERVER_LOG = pytest.StashKey[Path]()

CANARY = "CANARY-7f3a9"
MAX_TOKENS = 24
READY_TIMEOUT = 240.0  # loading two models on a busy 2-core machine
ASK_TIMEOUT = 180.0
BODY_LIMIT = 64 * 1024  # small, so that an oversize body fits in the loopback socket buffers

DOCS_A = {
    "tower.md": "# Eiffel Tower\nThe Eiffel Tower in Paris was completed in 1889. It is 330 "
    "metres tall and was designed by the company of Gustave Eiffel.\n",
    "museum.md": "# Louvre\nThe Louvre in Paris is the world's most-visited art museum. It "
    "opened in 1793.\n",
    "bread.md": "# Sourdough\nSourdough bread rises thanks to wild yeast and lactic acid "
    "bacteria.\n",
}
DOC_B = (
    "# Project Nightjar\nThe launch code of Project Nightjar is "
    f"{CANARY}. Project Nightjar launches rockets from Paris every spring.\n"
)
LAUNCH_QUESTION = "What is the launch code of Project Nightjar?"
TOWER_QUESTION = "When was the Eiffel Tower completed?"


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    root: Path
    keys: dict[str, str] = field(repr=False)  # role -> secret
    b_doc_id: str
    b_review_id: int
    revoked_key: str = field(repr=False)
    seen: list[str] = field(
        default_factory=list, repr=False
    )  # bodies answered to keys for `a` only

    def client(self, timeout: float = ASK_TIMEOUT) -> httpx2.Client:
        return httpx2.Client(base_url=self.base_url, timeout=timeout)

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "verirag.pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"verirag {' '.join(args)}: {done.stderr}"
    return done.stdout


def _create_key(env: dict[str, str], collections: str, scope: str, name: str) -> dict[str, Any]:
    args = ["keys", "create", "--collections", collections, "--scope", scope, "--name", name]
    out = _cli(env, *args, "--json")
    created: dict[str, Any] = json.loads(out)
    assert created["key"].startswith("vrag_") and created["scope"] == scope
    return created


def _plant_review_item(data_dir: Path) -> int:
    """A review item of collection `b` whose text holds the canary."""
    text = f"The launch code is {CANARY}."
    answer = Answer(
        question=LAUNCH_QUESTION,
        collection="b",
        text=text,
        decision="review",
        decision_reason="a claim is unverified",
        confidence=0.4,
        claims=(
            ClaimResult(
                text=text,
                start=0,
                end=len(text),
                citations=(1,),
                verdict="unverified",
                score=0.4,
                reason="planted by the test",
            ),
        ),
        citations=(),
        retrieved=(),
        generator="test",
        prompt_version="v2",
        params={},
        timings=Timings(retrieve=0.0, generate=0.0, verify=0.0, total=0.0),
    )
    queue = ReviewQueue(data_dir / "review.sqlite")
    try:
        return queue.add(answer)
    finally:
        queue.close()


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx2.Client(base_url=base_url, timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"verirag serve exited with {process.returncode}:\n"
                    + log.read_text(errors="replace")[-20_000:]
                )
            try:
                ready = client.get("/readyz")
            except httpx2.TransportError:
                time.sleep(0.25)
                continue
            if ready.status_code == 200:
                return
            assert ready.status_code == 503, ready.text
            if ready.json()["status"] == "failed":
                pytest.fail(f"models failed to load: {ready.json()['detail']}")
            time.sleep(0.25)
    pytest.fail(
        f"/readyz not 200 after {READY_TIMEOUT:g}s:\n" + log.read_text(errors="replace")[-20_000:]
    )


@contextlib.contextmanager
def running_server(root: Path, pytestconfig: pytest.Config) -> Iterator[Server]:
    """Index the two collections under `root`, make the keys, start `verirag serve` and
    wait until its models are ready; stop it on exit."""
    data_dir = root / "data"
    docs_a, docs_b = root / "src-a", root / "src-b"
    docs_a.mkdir()
    docs_b.mkdir()
    for name, text in DOCS_A.items():
        (docs_a / name).write_text(text)
    (docs_b / "nightjar.md").write_text(DOC_B)
    # Indexed beforehand, in this process (the server loads its own copy of the encoder).
    indexer = IndexingPipeline(Settings(data_dir=data_dir, model_cache=MODEL_CACHE))
    assert indexer.run([docs_a], "a").added == len(DOCS_A)
    report_b = indexer.run([docs_b], "b")
    assert report_b.added == 1
    b_doc_id = next(o.doc_id for o in report_b.outcomes if o.doc_id)
    del indexer
    b_review_id = _plant_review_item(data_dir)

    env = {
        **os.environ,
        "VERIRAG_DATA_DIR": str(data_dir),
        "VERIRAG_MODEL_CACHE": str(MODEL_CACHE),
        "VERIRAG_GENERATOR": "smollm2-135m",
        "VERIRAG_N_CTX": "2048",
        "VERIRAG_API_MAX_BODY_BYTES": str(BODY_LIMIT),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("VERIRAG_CONFIG", None)
    keys = {
        "a_read": _create_key(env, "a", "read", "a-read")["key"],
        "a_write": _create_key(env, "a", "write", "a-write")["key"],
        "admin": _create_key(env, "*", "admin", "admin")["key"],
    }
    revoked = _create_key(env, "a", "read", "revoked")
    _cli(env, "keys", "revoke", str(revoked["id"]))

    port = _free_port()
    log = root / "server.log"
    pytestconfig.stash[SERVER_LOG] = log
    with log.open("wb") as sink:
        command = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(
            [sys.executable, "-m", "verirag.pipeline.cli", *command],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(base_url, process, log)
        yield Server(
            base_url=base_url,
            process=process,
            data_dir=data_dir,
            root=root,
            keys=keys,
            b_doc_id=b_doc_id,
            b_review_id=b_review_id,
            revoked_key=revoked["key"],
        )
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
