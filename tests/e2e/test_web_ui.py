"""The web page in a real browser: headless Chromium (Debian's `chromium`, installed by
`make browser`) driven by Playwright against the real `verirag serve` of the e2e session,
with the real bundled models.

Screenshots go to the test's temporary folder, or to `docs/ui/` with
`VERIRAG_UPDATE_SCREENSHOTS=1` (the ones the README shows).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.serving import CANARY, Server
from verirag.core.records import Answer, Citation, ClaimResult, EvidenceSpan, Timings
from verirag.pipeline.review import ReviewQueue

pytestmark = pytest.mark.integration

CHROMIUM = Path(os.environ.get("VERIRAG_CHROMIUM", "/usr/bin/chromium"))
# No background traffic: on a closed network Chromium's own connections fail by the dozen.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_MS = 15_000
ANSWER_MS = 180_000  # a streamed answer, then every claim checked, on a busy 2-core machine
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"

HOSTILE_NAME = "quokka-notes.txt"
HOSTILE = (
    "Quokka notes <img src=x onerror=\"window.__pwned='img'\">\n"
    "Rottnest Island near Perth is home to about 10,000 quokkas. "
    "<script>window.__pwned='script'</script> They are small wallabies.\n"
)
QUOKKA_QUESTION = "How many quokkas live on Rottnest Island?"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("VERIRAG_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path


def _page(browser: Any, server: Server) -> tuple[Any, list[str]]:
    """A fresh page at /ui/, and the script errors it will log (a CSP violation is one)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        # A refused request (the wrong key tried on purpose) is logged too; not a fault.
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.set_default_timeout(STEP_MS)
    page.goto(f"{server.base_url}/ui/")
    return page, errors


def _sign_in(page: Any, key: str) -> None:
    page.fill("#api-key", key)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#tabs:not([hidden])")


def _plant_review_item(server: Server) -> int:
    """An open review item of collection `a` with one supported and one unsupported claim,
    each resting on a sentence of its source."""
    source = "The Louvre in Paris is the world's most-visited art museum. It opened in 1793."
    text = "The Louvre opened in 1793 [1]. It has a glass roof over every room [1]."
    first = text.index("It has")
    answer = Answer(
        question="When did the Louvre open?",
        collection="a",
        text=text,
        decision="review",
        decision_reason="a claim is unsupported by the sources",
        confidence=0.41,
        claims=(
            ClaimResult(
                text=text[:first].strip(),
                start=0,
                end=first - 1,
                citations=(1,),
                verdict="supported",
                score=0.93,
                reason="the judge found it in the sources",
                evidence=(EvidenceSpan(1, source.index("It opened"), len(source)),),
            ),
            ClaimResult(
                text=text[first:],
                start=first,
                end=len(text),
                citations=(1,),
                verdict="unsupported",
                score=0.08,
                reason="the judge did not find it in the sources",
                evidence=(EvidenceSpan(1, 0, source.index(" It opened")),),
            ),
        ),
        citations=(Citation(1, 1, "museum", "museum.md", "Louvre", 0, len(source), source),),
        retrieved=(),
        generator="test",
        prompt_version="v2",
        params={},
        timings=Timings(),
    )
    queue = ReviewQueue(server.data_dir / "review.sqlite")
    try:
        return queue.add(answer)
    finally:
        queue.close()


def test_the_page_is_served_with_a_strict_policy_and_no_cookie(server: Server) -> None:
    with httpx2.Client(base_url=server.base_url, timeout=10) as client:
        page = client.get("/ui/")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in page.headers
        assert "http://" not in page.text and "https://" not in page.text  # no CDN
        script = client.get("/ui/static/app.js")
        assert script.status_code == 200 and "innerHTML" not in script.text
        assert client.get("/ui/static/../../keys.sqlite").status_code == 404
        # A cross-site form post carries no credential: the API refuses it.
        forged = client.post(
            "/v1/review/1",
            data={"resolution": "correct"},
            headers={"Origin": "https://evil.example"},
        )
        assert forged.status_code == 401


def test_sign_in_ask_stream_and_see_claims_and_evidence(
    server: Server, browser: Any, shots: Path
) -> None:
    page, errors = _page(browser, server)
    page.fill("#api-key", "vrag_not-a-key")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:has-text('not valid')")

    _sign_in(page, server.keys["a_write"])
    assert page.inner_text("#who-name") == "a-write"
    # The key covers `a` only: `b` is not even named anywhere on the page.
    assert page.eval_on_selector_all("#ask-collection option", "o => o.map(x => x.value)") == ["a"]

    # Upload the hostile document through the page and watch the job finish.
    page.click("#tabs button[data-tab=documents]")
    page.set_input_files(
        "#upload-files",
        files=[{"name": HOSTILE_NAME, "mimeType": "text/plain", "buffer": HOSTILE.encode()}],
    )
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#job-status[data-status=done]", timeout=120_000)
    assert "added" in page.inner_text(f"#job li[data-file='{HOSTILE_NAME}']")
    page.wait_for_selector(f"#doc-list td:has-text('{HOSTILE_NAME}')")
    page.screenshot(path=str(shots / "documents.png"), full_page=True)

    # Ask: tokens stream in, then the verified answer with its claims and sources.
    page.click("#tabs button[data-tab=ask]")
    page.fill("#question", QUOKKA_QUESTION)
    page.fill("#ask-max-tokens", "32")
    page.click("#ask-button")
    # (No wait_for_function: the page's policy forbids the eval it relies on, as it should.)
    page.wait_for_selector("#stream:not(:empty)", state="attached", timeout=ANSWER_MS)
    streamed = page.inner_text("#stream")
    page.wait_for_selector("#ask-answer", timeout=ANSWER_MS)
    assert streamed.strip()
    assert page.inner_text("#ask-decision") in ("ANSWER", "REVIEW", "ABSTAIN")
    assert page.locator(".legend").count() == 1
    short = page.inner_text("#ask-short")
    assert short.startswith("Short answer:")
    # Every claim is marked by its verdict, with a non-colour cue: a mark and a label.
    for claim in page.query_selector_all("#ask-answer .answer-text .claim"):
        verdict = claim.get_attribute("class").split()[-1]
        assert verdict in ("supported", "unsupported", "unverified")
        assert claim.get_attribute("aria-label").split(": ")[1].startswith(verdict)
        assert claim.get_attribute("data-mark") in ("✓", "✗", "?")
    # The hostile document shows as text: no element was made of it, nothing ran.
    sources = page.inner_text("#ask-sources")
    if "quokka" in sources.lower():
        assert "<script>" in sources or "<img" in sources
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.locator("#ask-sources img, #ask-sources script").count() == 0
    page.screenshot(path=str(shots / "ask.png"), full_page=True)
    assert not errors, errors

    # Documents: delete the upload again through the page.
    page.click("#tabs button[data-tab=documents]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#doc-list tr:has-text('{HOSTILE_NAME}') button.danger")
    page.wait_for_selector(f"#job p:has-text('Deleted'):has-text('{HOSTILE_NAME}')")
    assert page.locator(f"#doc-list td:has-text('{HOSTILE_NAME}')").count() == 0
    page.context.close()


def test_review_an_item_click_a_claim_and_export(
    server: Server, browser: Any, shots: Path, tmp_path: Path
) -> None:
    item_id = _plant_review_item(server)
    page, errors = _page(browser, server)
    _sign_in(page, server.keys["a_write"])
    page.click("#tabs button[data-tab=review]")
    row = f"#review-list tr[data-item='{item_id}']"
    page.wait_for_selector(row)
    # The planted item of collection `b` is not listed for a key of `a`.
    assert page.locator(f"#review-list tr[data-item='{server.b_review_id}']").count() == 0
    assert CANARY not in page.content()
    # Filter by decision reason.
    page.select_option("#review-reason", "a claim is unsupported by the sources")
    page.click("#review-filter button[type=submit]")
    page.wait_for_selector(row)
    page.click(f"{row} button")
    page.wait_for_selector("#review-answer")

    # The unsupported claim is marked as such; clicking it focuses its evidence.
    unsupported = page.locator("#review-answer .answer-text .claim.unsupported")
    assert unsupported.count() == 1 and unsupported.get_attribute("data-mark") == "✗"
    unsupported.click()
    focused = page.locator("#review-sources mark.focused")
    assert focused.count() == 1
    assert focused.inner_text() == "The Louvre in Paris is the world's most-visited art museum."
    page.locator("#review-answer .answer-text .claim.supported").click()
    assert page.locator("#review-sources mark.focused").inner_text() == "It opened in 1793."
    page.screenshot(path=str(shots / "review.png"), full_page=True)

    # Correct the answer, with a note; the item records who and when.
    page.fill("#review-note", "no source mentions a glass roof")
    page.click("#review-correct")
    page.fill("#review-corrected", "The Louvre opened in 1793 [1].")
    page.click("#review-correct")
    page.wait_for_selector("#review-resolved")
    resolved = page.inner_text("#review-resolved")
    assert "Resolved as corrected by a-write" in resolved
    assert "no source mentions a glass roof" in resolved
    assert not errors, errors

    with page.expect_download() as download:
        page.click("#review-export")
    exported = tmp_path / "review.jsonl"
    download.value.save_as(exported)
    lines = [line for line in exported.read_text().splitlines() if line]
    records = [json.loads(line) for line in lines]
    mine = next(r for r in records if r["id"] == item_id)
    assert mine["right"] is False and mine["corrected_text"] == "The Louvre opened in 1793 [1]."
    assert mine["resolved_by"] == "a-write" and mine["signals"]["confidence"] == 0.41
    assert all(r["collection"] == "a" for r in records)
    page.context.close()


def test_an_admin_sees_every_collection_and_a_reader_cannot_resolve(
    server: Server, browser: Any
) -> None:
    _plant_review_item(server)
    page, errors = _page(browser, server)
    _sign_in(page, server.keys["admin"])
    options = page.eval_on_selector_all("#ask-collection option", "o => o.map(x => x.value)")
    assert {"a", "b"} <= set(options)
    page.click("#sign-out")
    page.wait_for_selector("#signin:not([hidden])")
    _sign_in(page, server.keys["a_read"])
    page.click("#tabs button[data-tab=review]")
    page.wait_for_selector("#review-list tbody tr")
    first = page.locator("#review-list tbody tr button").first
    first.click()
    page.wait_for_selector("#review-answer")
    assert page.locator("#review-approve").count() == 0  # a read key only reads
    assert page.locator("#upload-form[hidden]").count() == 1
    assert not errors, errors
    page.context.close()


def test_sign_in_waits_for_the_script(server: Server, browser: Any) -> None:
    """Until app.js handles the form, Sign in is disabled: a key submitted before then would
    reload the page (the race a fast user, or a test right after Sign out, used to hit)."""
    page, errors = _page(browser, server)
    page.route("**/static/app.js", lambda route: route.abort())  # routing bypasses the cache
    page.reload()
    assert page.locator("#signin-form button[type=submit]").is_disabled()
    page.unroute("**/static/app.js")
    page.reload()
    page.wait_for_selector("#signin-form button[type=submit]:enabled")
    _sign_in(page, server.keys["a_read"])
    assert not errors, errors
    page.context.close()
