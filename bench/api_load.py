"""HTTP API load and overhead on the demo corpus (Python's help topics).

Starts a real `verirag serve` process on 127.0.0.1 over the demo corpus, then:

1. Load: `--clients` concurrent clients, each sending `--requests` `POST /v1/ask` requests
   (a fixed question list): throughput, p50/p95 latency, errors (must be 0; a 503 "queue
   full" counts as an error unless `--allow-503`), and the server's RSS (VmRSS) after
   warm-up, after the load and after the overhead requests below. Memory must stay bounded:
   the growth over the overhead requests (after the load has run) must stay under
   `--rss-leak-mib`. Growth during the first concurrent load is reported, not judged: the
   llama.cpp logits buffer (n_ctx x n_vocab float32, 2.4 GB for Qwen at 4096) is allocated
   untouched and becomes resident as requests reach new positions, so RSS climbs to a
   plateau; a leak would keep climbing after it.
2. Overhead: the same questions one at a time, `/v1/ask` wall time vs `RagPipeline.ask`
   called in this process on the same data, model and parameters, alternated question by
   question (never both generating at once: the server idles while this process answers),
   median of paired ratios (target <= 1.05, i.e. at most 5% overhead). `--gap` seconds pass
   before each call: OpenMP and ggml worker threads spin for a while after a call returns,
   and on a small machine the other process's spinning threads would slow whichever call
   comes next; a real deployment has no second model process beside the server.

Exits 1 when a request failed or the RSS growth is over the limit.

3. With `--upload-docs N`: asks alone, then the same asks while N documents upload into
   another collection (`bench/upload_phase.py`); `--only-upload` runs this phase alone.

    python bench/api_load.py [--model qwen2.5-1.5b] [--clients 4] [--requests 5]
    python bench/api_load.py --only-upload --upload-docs 200 [--upload-asks 6]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2

from bench.demo_questions import QUESTIONS, percentile
from bench.upload_phase import UPLOAD_COLLECTION, upload_phase
from verirag.core.device import offline_env
from verirag.core.settings import Settings, default_data_dir
from verirag.generators.params import GenerationParams
from verirag.pipeline.api.keys import KeyStore
from verirag.pipeline.cli.demo import write_pydoc_corpus
from verirag.pipeline.indexing import IndexingPipeline
from verirag.pipeline.rag import RagPipeline

COLLECTION = "demo"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mib(pid: int) -> float:
    """The process's resident set (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass(frozen=True)
class Counters:
    """A process's kernel accounting, summed over its threads."""

    cpu: float  # user + system seconds
    minor_faults: int
    involuntary: int  # context switches the scheduler forced

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.cpu - other.cpu,
            self.minor_faults - other.minor_faults,
            self.involuntary - other.involuntary,
        )


def counters(pid: int) -> Counters:
    # Fields after the command name, which may itself hold spaces or parentheses.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    involuntary = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        for line in status.splitlines():
            if line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary += int(line.split()[1])
    tick = os.sysconf("SC_CLK_TCK")
    return Counters((int(fields[11]) + int(fields[12])) / tick, int(fields[7]), involuntary)


class ServerProcess:
    """`verirag serve` as a child process, its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path, timeout: float) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--log-level", "warning"]
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "verirag.pipeline.cli", *command],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready(timeout)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _fail(self, message: str) -> None:
        tail = self.log.read_text(errors="replace")[-5000:]
        self.stop()
        raise SystemExit(f"{message}\n--- server log ---\n{tail}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx2.Client(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self._fail(f"verirag serve exited with {self.process.returncode}")
                try:
                    ready = client.get("/readyz")
                except httpx2.TransportError:
                    time.sleep(0.25)
                    continue
                if ready.status_code == 200:
                    return
                if ready.json().get("status") == "failed":
                    self._fail(f"models failed to load: {ready.json().get('detail')}")
                time.sleep(0.25)
        self._fail(f"/readyz not 200 after {timeout:g}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Result:
    seconds: float
    status: int  # 0 = no HTTP response (transport error)
    error: str = ""
    body: dict[str, Any] = field(default_factory=dict)


def ask_over_http(client: httpx2.Client, key: str, question: str, max_tokens: int) -> Result:
    started = time.perf_counter()
    try:
        response = client.post(
            "/v1/ask",
            json={"question": question, "collection": COLLECTION, "max_tokens": max_tokens},
            headers={"Authorization": f"Bearer {key}"},
        )
    except httpx2.HTTPError as exc:
        return Result(time.perf_counter() - started, 0, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        return Result(seconds, response.status_code, response.text[:300])
    body: dict[str, Any] = response.json()
    return Result(seconds, 200, body=body)


def run_load(
    base_url: str, key: str, clients: int, requests: int, max_tokens: int, timeout: float
) -> tuple[list[Result], float]:
    results: list[Result] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client_loop(index: int) -> None:
        with httpx2.Client(base_url=base_url, timeout=timeout) as client:
            start.wait()
            for j in range(requests):
                question = QUESTIONS[(index * requests + j) % len(QUESTIONS)]
                result = ask_over_http(client, key, question, max_tokens)
                with lock:
                    results.append(result)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", default=None, help="generator (default: the settings', qwen2.5-1.5b)"
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=5, help="per client")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="overhead rounds over QUESTIONS")
    parser.add_argument(
        "--gap",
        type=float,
        default=1.0,
        help="idle seconds between the paired calls, so one process's spinning thread pools "
        "have gone to sleep before the other starts",
    )
    parser.add_argument("--n-ctx", type=int, default=None)
    parser.add_argument("--allow-503", action="store_true", help="queue-full is not an error")
    parser.add_argument(
        "--rss-leak-mib",
        type=float,
        default=64.0,
        help="largest RSS growth allowed over the overhead requests, after the load",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="per request, seconds")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="reuse (and keep) this data directory"
    )
    parser.add_argument(
        "--upload-docs",
        type=int,
        default=0,
        help="then asks alone and during an upload of this many documents (0: skip)",
    )
    parser.add_argument("--upload-asks", type=int, default=6, help="asks per upload phase")
    parser.add_argument(
        "--only-upload", action="store_true", help="skip the load and overhead phases"
    )
    args = parser.parse_args()
    offline_env()

    cache = Path(os.environ.get("VERIRAG_MODEL_CACHE", default_data_dir() / "models"))
    work = args.data_dir or Path(tempfile.mkdtemp(prefix="verirag-api-load-"))
    overrides: dict[str, Any] = {"data_dir": work, "model_cache": cache}
    if args.model:
        overrides["generator"] = args.model
    if args.n_ctx:
        overrides["n_ctx"] = args.n_ctx
    settings = Settings(**overrides)
    params = GenerationParams(max_tokens=args.max_tokens)
    try:
        return _bench(args, settings, params, work)
    finally:
        if args.data_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def _bench(
    args: argparse.Namespace, settings: Settings, params: GenerationParams, work: Path
) -> int:
    t0 = time.perf_counter()
    indexer = IndexingPipeline(settings)
    report = indexer.run([write_pydoc_corpus(work / "corpus")], COLLECTION)
    encoder = indexer.encoder
    del indexer  # releases the collection; the server opens it next
    print(
        f"indexed the demo corpus: {report.added + report.updated + report.unchanged} "
        f"documents in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    keys = KeyStore.for_data_dir(settings.data_dir)
    _, key = keys.create(COLLECTION, "read", "api-load")
    _, write_key = keys.create(UPLOAD_COLLECTION, "write", "api-load-upload")
    keys.close()

    env = {
        **os.environ,
        "VERIRAG_DATA_DIR": str(settings.data_dir),
        "VERIRAG_MODEL_CACHE": str(settings.model_cache),
        "VERIRAG_GENERATOR": settings.generator,
        "VERIRAG_N_CTX": str(settings.n_ctx),
        # Measures the server, not the per-key limiter.
        "VERIRAG_API_RATE_LIMIT_PER_MINUTE": "0",
        "VERIRAG_API_REQUEST_TIMEOUT_SECONDS": str(args.timeout),
    }
    env.pop("VERIRAG_CONFIG", None)
    t0 = time.perf_counter()
    server = ServerProcess(env, settings.data_dir / "api-load-server.log", timeout=600)
    try:
        print(f"server ready in {time.perf_counter() - t0:.1f}s (pid {server.pid})", flush=True)
        rss_ready = rss_mib(server.pid)
        with httpx2.Client(base_url=server.base_url, timeout=args.timeout) as client:
            warm = ask_over_http(client, key, QUESTIONS[0], args.max_tokens)
        if warm.status != 200:
            print(f"warm-up request failed: {warm.status} {warm.error}")
            return 1
        rss_before = rss_mib(server.pid)

        def uploads() -> bool:
            return upload_phase(
                server.base_url,
                key,
                write_key,
                COLLECTION,
                work / "corpus",
                args.upload_docs,
                args.upload_asks,
                args.max_tokens,
                settings.api_max_upload_files,
                args.timeout,
            )

        if args.only_upload:
            ok_upload = uploads()
            print("RESULT:", "ok" if ok_upload else "FAIL")
            return 0 if ok_upload else 1

        # 1. concurrent load
        results, wall = run_load(
            server.base_url, key, args.clients, args.requests, args.max_tokens, args.timeout
        )
        rss_after = rss_mib(server.pid)
        ok = [r for r in results if r.status == 200]
        busy = [r for r in results if r.status == 503]
        errors = [
            r for r in results if r.status != 200 and not (args.allow_503 and r.status == 503)
        ]
        latencies = [r.seconds for r in ok]
        decisions: dict[str, int] = {}
        for r in ok:
            decisions[r.body["decision"]] = decisions.get(r.body["decision"], 0) + 1

        # 2. API overhead: sequential, alternating HTTP and in-process; the server is idle
        # while this process generates and the other way round.
        rag = RagPipeline(settings, encoder=encoder)
        rag.ask(QUESTIONS[0], COLLECTION, params=params)  # loads the generator and judge
        ratios: list[float] = []
        http_only: list[float] = []  # client wall time minus the server's own ask time
        # per stage (retrieve, generate, verify): server seconds / in-process seconds
        stage_ratios: dict[str, list[float]] = {"retrieve": [], "generate": [], "verify": []}
        same_text = 0
        # Where a slower call's time goes: more CPU for the same work, or less CPU per second.
        server_use: list[Counters] = []
        local_use: list[Counters] = []
        server_wall: list[float] = []
        local_wall: list[float] = []
        with httpx2.Client(base_url=server.base_url, timeout=args.timeout) as client:
            for rnd in range(args.rounds):
                for i, question in enumerate(QUESTIONS):
                    api_first = (rnd + i) % 2 == 0
                    local_s = 0.0
                    api: Result | None = None
                    local_text = ""
                    for step in (0, 1):
                        time.sleep(args.gap)
                        if (step == 0) == api_first:
                            before = counters(server.pid)
                            api = ask_over_http(client, key, question, args.max_tokens)
                            api_use = counters(server.pid) - before
                        else:
                            before = counters(os.getpid())
                            started = time.perf_counter()
                            answer = rag.ask(question, COLLECTION, params=params)
                            local_s = time.perf_counter() - started
                            local_one = counters(os.getpid()) - before
                            local_text = answer.text
                            local_timings = answer.timings
                    assert api is not None
                    if api.status != 200:
                        errors.append(api)
                        continue
                    ratios.append(api.seconds / local_s)
                    server_wall.append(api.seconds)
                    local_wall.append(local_s)
                    server_use.append(api_use)
                    local_use.append(local_one)
                    http_only.append(api.seconds - api.body["timings"]["total"])
                    for stage, values in stage_ratios.items():
                        mine = getattr(local_timings, stage)
                        if mine > 0:
                            values.append(api.body["timings"][stage] / mine)
                    same_text += api.body["text"] == local_text
        rag.close()
        rss_end = rss_mib(server.pid)
        ok_upload = args.upload_docs == 0 or uploads()
    finally:
        server.stop()

    growth = rss_after - rss_before
    n = len(results)
    print(f"\nHTTP API load, {settings.generator}, demo corpus, max_tokens {args.max_tokens}")
    print(
        f"load: {args.clients} clients x {args.requests} requests = {n}; "
        f"{len(ok)} ok, {len(errors)} errors"
        + (f" ({len(busy)} 503 allowed)" if args.allow_503 and busy else "")
        + f"; throughput {len(ok) / wall:.3f} req/s over {wall:.1f}s"
    )
    if latencies:
        print(
            f"latency: p50 {percentile(latencies, 0.5):.2f}s, p95 "
            f"{percentile(latencies, 0.95):.2f}s, max {max(latencies):.2f}s; "
            f"decisions {decisions}"
        )
    print(
        f"server RSS: {rss_ready:.0f} MiB ready, {rss_before:.0f} after warm-up, "
        f"{rss_after:.0f} after load ({growth:+.0f} MiB), {rss_end:.0f} after "
        f"{len(ratios)} more requests ({rss_end - rss_after:+.0f} MiB; limit "
        f"{args.rss_leak_mib:g})"
    )
    if ratios:
        print(
            f"overhead: /v1/ask vs in-process RagPipeline.ask, median paired ratio "
            f"{statistics.median(ratios):.3f} (target <= 1.05) over {len(ratios)} questions "
            f"x {args.rounds} round(s); min {min(ratios):.3f}, max {max(ratios):.3f}; HTTP + "
            f"JSON outside the pipeline median {statistics.median(http_only) * 1000:.1f} ms; "
            f"identical answer texts {same_text}/{len(ratios)}"
        )
        print(
            "per stage, server / in-process (median): "
            + ", ".join(
                f"{stage} {statistics.median(v):.3f}" for stage, v in stage_ratios.items() if v
            )
        )
    if server_use and local_use:
        for name, use, walls in (
            ("server", server_use, server_wall),
            ("in-process", local_use, local_wall),
        ):
            med = statistics.median
            print(
                f"{name} per ask (median): CPU {med(u.cpu for u in use):.2f}s, CPU/wall "
                f"{med(u.cpu / w for u, w in zip(use, walls, strict=True)):.2f}, "
                f"minor faults {med(u.minor_faults for u in use):.0f}, involuntary "
                f"context switches {med(u.involuntary for u in use):.0f}"
            )
    for r in errors[:5]:
        print(f"error: status {r.status}: {r.error}")
    failed = bool(errors) or rss_end - rss_after > args.rss_leak_mib or not ok_upload
    print("RESULT:", "FAIL" if failed else "ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
