"""End-to-end tests: one real `verirag serve` for the session, and a report hook that
attaches the server's log to every failing test."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.e2e.serving import SERVER_LOG, Server, running_server

_TAIL_CHARS = 20_000


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("e2e-api"), pytestconfig) as running:
        yield running


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
