"""End to end: a real `verirag serve` process on 127.0.0.1 with the real bundled models
(MiniLM, SmolLM2-135M) over a tiny corpus in two collections, `a` and `b`, where `b` holds a
canary string that no request made with a key for `a` may ever bring back.

The server is shared with the web page tests (`tests/e2e/serving.py`); answers are kept
short so that the whole module runs in about a minute on a small CPU.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from tests.e2e.serving import (
    ASK_TIMEOUT,
    BODY_LIMIT,
    CANARY,
    LAUNCH_QUESTION,
    MAX_TOKENS,
    TOWER_QUESTION,
    Server,
)

pytestmark = pytest.mark.integration


def _problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["status"] == status and body["detail"]
    return body


def _sse(response: httpx2.Response) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if fields:
                events.append((fields["event"], json.loads(fields["data"])))
                fields = {}
            continue
        if line.startswith(":"):  # a keep-alive comment, sent while the answer is checked
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    if fields:
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def _wait_job(client: httpx2.Client, location: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = client.get(location, headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {location} did not finish in 120s")


def _check_answer(body: dict[str, Any], collection: str) -> None:
    assert body["collection"] == collection
    assert body["decision"] in ("answer", "review", "abstain")
    assert body["decision_reason"]
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["params"]["max_tokens"] == MAX_TOKENS
    assert body["completion_tokens"] <= MAX_TOKENS
    assert body["timings"]["total"] > 0
    assert [c["number"] for c in body["citations"]] == list(range(1, len(body["citations"]) + 1))
    for citation in body["citations"]:
        assert 0 <= citation["start"] < citation["end"] and citation["snippet"]
    for claim in body["claims"]:
        assert claim["verdict"] in ("supported", "unsupported", "unverified")
        assert body["text"][claim["start"] : claim["end"]]
    if body["decision"] == "review":
        assert body["review_id"] is not None


# -- health, ask, stream ---------------------------------------------------------------------------
def test_healthz_answers_quickly_while_an_answer_is_generated(server: Server) -> None:
    result: dict[str, httpx2.Response] = {}

    def ask() -> None:
        with server.client() as client:
            result["ask"] = client.post(
                "/v1/ask",
                json={"question": TOWER_QUESTION, "collection": "a", "max_tokens": MAX_TOKENS},
                headers=server.headers("a_read"),
            )

    thread = threading.Thread(target=ask)
    thread.start()
    durations: list[float] = []
    during = 0  # health checks answered while the ask was still in flight
    busy_seen = False  # /metrics showed a model call running at some point
    with server.client(timeout=5) as client:
        while thread.is_alive():
            started = time.perf_counter()
            health = client.get("/healthz")
            durations.append(time.perf_counter() - started)
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            if thread.is_alive():
                during += 1
                if not busy_seen:
                    metrics = client.get("/metrics", headers=server.headers("admin")).text
                    busy_seen = re.search(r"^verirag_workers_busy [1-9]", metrics, re.M) is not None
            time.sleep(0.05)
    thread.join()
    assert result["ask"].status_code == 200, result["ask"].text
    assert during >= 3, f"only {during} health checks overlapped the answer"
    assert busy_seen, "no health check overlapped a running model call"
    assert max(durations) < 1.0, f"slowest /healthz {max(durations):.3f}s"


def test_ask_returns_the_full_verified_answer(server: Server) -> None:
    with server.client() as client:
        response = client.post(
            "/v1/ask",
            json={"question": TOWER_QUESTION, "collection": "a", "k": 3, "max_tokens": MAX_TOKENS},
            headers=server.headers("a_read"),
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    _check_answer(body, "a")
    assert body["decision"] != "abstain" or body["completion_tokens"] > 0
    assert body["text"]
    assert body["citations"] and any("1889" in c["snippet"] for c in body["citations"])
    assert body["retrieved"] and all(h["doc_id"] for h in body["retrieved"])
    assert body["prompt_tokens"] > 0 and body["timings"]["generate"] > 0
    server.seen.append(response.text)


def test_ask_stream_sends_tokens_then_one_answer(server: Server) -> None:
    with (
        server.client() as client,
        client.stream(
            "POST",
            "/v1/ask/stream",
            json={"question": TOWER_QUESTION, "collection": "a", "max_tokens": MAX_TOKENS},
            headers=server.headers("a_read"),
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse(response)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and kinds.count("answer") == 1, kinds
    assert "error" not in kinds
    tokens = [data["text"] for kind, data in events if kind == "token"]
    assert tokens and kinds[: len(tokens)] == ["token"] * len(tokens)
    answer = events[-1][1]
    _check_answer(answer, "a")
    assert "".join(tokens).strip() == answer["text"]
    assert any("1889" in c["snippet"] for c in answer["citations"])


def test_openai_client_gets_the_verified_answer(server: Server) -> None:
    """The official openai client against the real server and models: the message is the
    verified answer when verirag delivers it, and says it was withheld otherwise."""
    import openai

    client = openai.OpenAI(
        base_url=f"{server.base_url}/v1",
        api_key=server.keys["a_read"],
        max_retries=0,
        timeout=ASK_TIMEOUT,
    )
    assert [m.id for m in client.models.list()] == ["a"]
    done = client.chat.completions.create(
        model="a",
        messages=[{"role": "user", "content": TOWER_QUESTION}],
        max_tokens=MAX_TOKENS,
    )
    answer = (done.model_extra or {})["verirag"]
    _check_answer(answer, "a")
    content = done.choices[0].message.content or ""
    if answer["decision"] == "answer":
        assert content == answer["text"]
    else:
        assert content.startswith("verirag ")
        assert not answer["text"] or answer["text"] not in content
    assert done.usage is not None
    assert done.usage.completion_tokens == answer["completion_tokens"]
    server.seen.append(done.model_dump_json())


# -- uploads -------------------------------------------------------------------------------------
def test_upload_job_then_list_ask_and_delete(server: Server) -> None:
    write, read = server.headers("a_write"), server.headers("a_read")
    good = (
        b"# Rottnest Island\nRottnest Island near Perth is home to about 10,000 quokkas, "
        b"small wallabies that live nowhere else in such numbers.\n"
    )
    corrupt = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> \x00\x01\x02 not really a pdf"
    with server.client() as client:
        before = client.get("/v1/collections/a/documents", headers=read).json()["total"]
        accepted = client.post(
            "/v1/collections/a/documents",
            files=[
                ("files", ("quokkas.md", good, "text/markdown")),
                ("files", ("broken.pdf", corrupt, "application/pdf")),
            ],
            headers=write,
        )
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert [f["saved_as"] for f in body["files"]] == ["quokkas.md", "broken.pdf"]
        assert body["location"] == f"/v1/jobs/{body['job_id']}"
        job = _wait_job(client, body["location"], read)
        assert job["status"] == "done", job
        assert (job["added"], job["failed"]) == (1, 1), job
        outcomes = {Path(o["source"]).name: o for o in job["outcomes"]}
        assert outcomes["quokkas.md"]["outcome"] == "added"
        assert outcomes["quokkas.md"]["chunks"] >= 1
        assert outcomes["broken.pdf"]["outcome"] == "failed" and outcomes["broken.pdf"]["reason"]
        doc_id = outcomes["quokkas.md"]["doc_id"]

        listed = client.get("/v1/collections/a/documents", headers=read).json()
        assert listed["total"] == before + 1  # nothing already indexed was lost
        assert doc_id in [d["doc_id"] for d in listed["items"]]

        asked = client.post(
            "/v1/ask",
            json={
                "question": "How many quokkas live on Rottnest Island?",
                "collection": "a",
                "max_tokens": MAX_TOKENS,
            },
            headers=read,
        )
        assert asked.status_code == 200, asked.text
        answer = asked.json()
        _check_answer(answer, "a")
        assert doc_id in [c["doc_id"] for c in answer["citations"]]

        path = f"/v1/collections/a/documents/{quote(doc_id, safe='')}"
        _problem(client.delete(path, headers=read), 403)  # read scope cannot delete
        deleted = client.delete(path, headers=write)
        assert deleted.status_code == 200, deleted.text
        assert [d["doc_id"] for d in deleted.json()["deleted"]] == [doc_id]
        after = client.get("/v1/collections/a/documents", headers=read).json()
        assert after["total"] == before
        assert doc_id not in [d["doc_id"] for d in after["items"]]
        _problem(client.delete(path, headers=write), 404)


def test_path_traversal_file_names_are_refused(server: Server) -> None:
    names = [
        "../../escape.md",
        "..\\..\\escape.md",
        "a/../../escape.md",
        "/etc/../escape.md",
        "....md",
        "escape.exe",
    ]
    with server.client() as client:
        for name in names:
            response = client.post(
                "/v1/collections/a/documents",
                files={"files": (name, b"# Escape\nThis must never be written.\n", "text/plain")},
                headers=server.headers("a_write"),
            )
            _problem(response, 422)
    escaped = [p for p in server.root.rglob("escape*") if p.is_file()]
    escaped += [p for p in server.root.parent.glob("escape*") if p.is_file()]
    assert escaped == []


# -- authentication and isolation --------------------------------------------------------------
def test_missing_invalid_or_revoked_key_is_401(server: Server) -> None:
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/ask", {"json": {"question": TOWER_QUESTION, "collection": "a"}}),
        ("POST", "/v1/ask/stream", {"json": {"question": TOWER_QUESTION, "collection": "a"}}),
        ("GET", "/v1/collections", {}),
        ("GET", "/v1/collections/a/documents", {}),
        ("DELETE", "/v1/collections/a/documents/x.md", {}),
        ("POST", "/v1/collections/a/documents", {"files": {"files": ("x.md", b"x")}}),
        ("GET", "/v1/jobs/0123", {}),
        ("GET", "/v1/review", {}),
        ("POST", "/v1/review/1", {"json": {"resolution": "correct"}}),
        ("GET", "/metrics", {}),
    ]
    credentials: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer vrag_not-a-real-key"},
        {"Authorization": "Bearer"},
        {"X-API-Key": "not-even-the-prefix"},
        {"X-API-Key": server.revoked_key},
        {"Authorization": f"Basic {server.keys['a_read']}"},
    ]
    with server.client() as client:
        for method, path, kwargs in requests:
            for headers in credentials:
                response = client.request(method, path, headers=headers, **kwargs)
                _problem(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


def test_a_key_never_sees_collection_b(server: Server) -> None:
    read, write, admin = (server.headers(r) for r in ("a_read", "a_write", "admin"))
    ask_b = {"question": LAUNCH_QUESTION, "collection": "b", "max_tokens": MAX_TOKENS}
    b_doc = f"/v1/collections/b/documents/{quote(server.b_doc_id, safe='')}"
    with server.client() as client:
        # A job of collection b, started by the admin.
        accepted = client.post(
            "/v1/collections/b/documents",
            files={"files": ("more.md", f"# More\nNightjar also uses {CANARY}.\n".encode())},
            headers=admin,
        )
        assert accepted.status_code == 202, accepted.text
        b_job = accepted.json()["location"]
        assert _wait_job(client, b_job, admin)["status"] == "done"

        responses: list[httpx2.Response] = []
        for headers in (read, write):
            forbidden = [
                client.post("/v1/ask", json=ask_b, headers=headers),
                client.post("/v1/ask/stream", json=ask_b, headers=headers),
                client.get("/v1/collections/b/documents", headers=headers),
            ]
            for response in forbidden:
                _problem(response, 403)
            responses += forbidden
            listed = client.get("/v1/collections", headers=headers)
            assert listed.json() == [{"name": "a"}]
            review = client.get("/v1/review?status=all", headers=headers)
            assert review.status_code == 200
            assert all(item["collection"] == "a" for item in review.json())
            job = client.get(b_job, headers=headers)
            _problem(job, 404)
            responses += [listed, review, job]
        writes = [
            client.delete(b_doc, headers=write),
            client.post(
                "/v1/collections/b/documents",
                files={"files": ("nightjar.md", b"# Overwritten\nGone.\n")},
                headers=write,
            ),
        ]
        for response in writes:
            _problem(response, 403)
        resolve = client.post(
            f"/v1/review/{server.b_review_id}", json={"resolution": "incorrect"}, headers=write
        )
        _problem(resolve, 404)
        # Asking collection a about b's secret: the search never touches b's vectors.
        own = client.post(
            "/v1/ask",
            json={"question": LAUNCH_QUESTION, "collection": "a", "max_tokens": MAX_TOKENS},
            headers=read,
        )
        assert own.status_code == 200, own.text
        responses += [*writes, resolve, own]
        for response in responses:
            server.seen.append(response.text)
        for body in server.seen:
            assert CANARY not in body

        # Controls with the admin key: b's content is there, reachable and untouched.
        b_docs = client.get("/v1/collections/b/documents", headers=admin).json()
        assert server.b_doc_id in [d["doc_id"] for d in b_docs["items"]]
        assert not (server.data_dir / "uploads" / "b" / "nightjar.md").exists()
        items = client.get("/v1/review?status=all", headers=admin).json()
        planted = next(i for i in items if i["id"] == server.b_review_id)
        assert planted["status"] == "open" and CANARY in planted["answer_text"]
        answered = client.post("/v1/ask", json=ask_b, headers=admin)
        assert answered.status_code == 200, answered.text
        assert CANARY in answered.text  # retrieved from b when the key covers it


# -- malformed requests -------------------------------------------------------------------------
def test_malformed_json_and_invalid_parameters(server: Server) -> None:
    read = server.headers("a_read")
    json_headers = {**read, "Content-Type": "application/json"}
    marker = "ECHO-MARKER-91c2"
    base = {"question": f"{TOWER_QUESTION} {marker}", "collection": "a"}
    with server.client() as client:
        for path in ("/v1/ask", "/v1/ask/stream"):
            malformed = client.post(path, content=b'{"question": "x",', headers=json_headers)
            assert _problem(malformed, 400)["type"].endswith("malformed-json")
            _problem(client.post(path, content=b"[1, 2]", headers=json_headers), 422)
            _problem(client.post(path, json={"collection": "a"}, headers=read), 422)
            invalid: list[dict[str, Any]] = [
                {"temperature": 5},
                {"temperature": "hot"},
                {"top_p": 0},
                {"top_p": 1.5},
                {"top_k": -1},
                {"frequency_penalty": 3},
                {"presence_penalty": -3},
                {"seed": -1},
                {"stop": ["x"] * 9},
                {"stop": [""]},
                {"max_tokens": 0},
                {"max_tokens": 100_000},
                {"k": 0},
                {"k": 100_000},
                {"question": ""},
                {"question": "why? " * 1000},
                {"collection": "../b"},
                {"unexpected": True},
            ]
            for change in invalid:
                response = client.post(path, json={**base, **change}, headers=read)
                body = _problem(response, 422)
                assert marker not in response.text, change  # no request data echoed
                assert body["detail"]
            params = client.post(path, json={**base, "temperature": 5, "top_p": 2}, headers=read)
            detail = _problem(params, 422)["detail"]
            assert "temperature" in detail and "top_p" in detail
        too_big = client.post(
            "/v1/ask",
            content=b'{"question": "' + b"x" * (BODY_LIMIT + 32 * 1024) + b'"}',
            headers=json_headers,
        )
        _problem(too_big, 413)
        write_json = {**server.headers("a_write"), "Content-Type": "application/json"}
        resolve = client.post("/v1/review/1", content=b"{not json", headers=write_json)
        _problem(resolve, 400)
