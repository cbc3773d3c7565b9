"""`bench/api_load.py --upload-docs N`: do asks keep their latency while documents upload?

Asks on the demo collection, one after another, first alone, then while N documents upload
into another collection (in requests of `api_max_upload_files`, each one an indexing job on
the server's own indexing executor). Prints p50/p95 of both, their ratio, the jobs' outcome,
and how many asks ran while a job was still indexing. On a 2-core machine the indexing
competes with the generator for the CPU, so some slow-down is the hardware's; what must not
happen is an ask waiting for a job (its queue, its lock) or failing (503/504).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx2

from bench.demo_questions import QUESTIONS, percentile

UPLOAD_COLLECTION = "bulk"


def synthetic_documents(corpus: Path, count: int) -> list[tuple[str, bytes]]:
    """`count` distinct documents made from the demo corpus's records (the help topics, one
    JSONL record each), each a copy under its own heading, so each is indexed, not skipped as
    unchanged."""
    texts = [
        str(json.loads(line)["text"])
        for path in ([corpus] if corpus.is_file() else sorted(corpus.rglob("*.jsonl")))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return [
        (f"doc-{i:04d}.md", f"# Bulk document {i}\n\n{texts[i % len(texts)]}".encode())
        for i in range(count)
    ]


def _asks(
    client: httpx2.Client,
    key: str,
    collection: str,
    count: int,
    max_tokens: int,
    during: Any = None,
) -> tuple[list[float], list[int], int]:
    seconds, statuses, overlapped = [], [], 0
    for i in range(count):
        started = time.perf_counter()
        response = client.post(
            "/v1/ask",
            json={
                "question": QUESTIONS[i % len(QUESTIONS)],
                "collection": collection,
                "max_tokens": max_tokens,
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        seconds.append(time.perf_counter() - started)
        statuses.append(response.status_code)
        if during is not None and during():
            overlapped += 1
    return seconds, statuses, overlapped


def upload_phase(
    base_url: str,
    read_key: str,
    write_key: str,
    collection: str,
    corpus: Path,
    docs: int,
    asks: int,
    max_tokens: int,
    per_request: int,
    timeout: float,
) -> bool:
    """Runs the phase and prints it; False when an ask or a job failed."""
    files = synthetic_documents(corpus, docs)
    with httpx2.Client(base_url=base_url, timeout=timeout) as client:
        alone, alone_status, _ = _asks(client, read_key, collection, asks, max_tokens)
        started = time.perf_counter()
        jobs: list[str] = []
        refused: list[str] = []  # 503 "indexing queue full" answers, retried as a client would

        def post_all() -> None:
            # Its own client: httpx clients are not shared across threads here.
            with httpx2.Client(base_url=base_url, timeout=timeout) as uploader:
                for i in range(0, len(files), per_request):
                    batch = files[i : i + per_request]
                    while True:
                        response = uploader.post(
                            f"/v1/collections/{UPLOAD_COLLECTION}/documents",
                            files=[("files", (n, body, "text/markdown")) for n, body in batch],
                            headers={"Authorization": f"Bearer {write_key}"},
                        )
                        if response.status_code != 503:
                            break
                        refused.append(response.json().get("detail", ""))
                        time.sleep(float(response.headers.get("retry-after", "2")))
                    if response.status_code != 202:
                        refused.append(f"{response.status_code} {response.text[:200]}")
                        return
                    jobs.append(response.json()["job_id"])

        poster = threading.Thread(target=post_all)
        poster.start()
        while not jobs and poster.is_alive():
            time.sleep(0.1)

        def status() -> list[dict[str, Any]]:
            auth = {"Authorization": f"Bearer {write_key}"}
            return [client.get(f"/v1/jobs/{job}", headers=auth).json() for job in jobs]

        def indexing() -> bool:
            return poster.is_alive() or any(j["status"] in ("queued", "running") for j in status())

        during, during_status, overlapped = _asks(
            client, read_key, collection, asks, max_tokens, indexing
        )
        while indexing():
            time.sleep(1)
        poster.join()
        upload_wall = time.perf_counter() - started
        final = status()
    failed_jobs = [j for j in final if j["status"] != "done"]
    if len(jobs) * per_request < len(files):
        print(f"upload stopped: {refused[-1] if refused else 'unknown'}")
        return False
    added = sum(j["added"] for j in final)
    bad = [s for s in alone_status + during_status if s != 200]
    med = statistics.median
    print(
        f"\nasks while uploading: {asks} asks alone, then the same {asks} while {docs} "
        f"documents upload in {len(jobs)} jobs of up to {per_request}"
    )
    print(
        f"alone: p50 {percentile(alone, 0.5):.2f}s p95 {percentile(alone, 0.95):.2f}s; during "
        f"the upload: p50 {percentile(during, 0.5):.2f}s p95 {percentile(during, 0.95):.2f}s; "
        f"ratio of medians {med(during) / med(alone):.2f} ({overlapped} of {asks} asks ended "
        f"while a job was still indexing)"
    )
    print(
        f"upload: {added} documents added, {len(failed_jobs)} jobs not done, "
        f"{upload_wall:.0f}s from the first request to the last job done, {len(refused)} "
        f"requests refused with 503 (queue full) and retried; "
        f"asks not 200: {len(bad)} {sorted(set(bad))}"
    )
    return not bad and not failed_jobs
