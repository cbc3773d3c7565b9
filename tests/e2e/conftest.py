"""End-to-end tests: a report hook that attaches the server's log to every failing test."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

SERVER_LOG = pytest.StashKey[Path]()
_TAIL_CHARS = 20_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    log = item.config.stash.get(SERVER_LOG, None)
    if report.failed and log is not None and log.is_file():
        text = log.read_text(errors="replace")
        report.sections.append(("verirag serve log (tail)", text[-_TAIL_CHARS:]))
    return report
