"""Property-based run over the app's own OpenAPI document (schemathesis, in process through
its ASGI transport): whatever the generated request, the server never answers 5xx.

Bounded: a few examples per operation, no shrinking beyond a short deadline, about ten
seconds in all on two cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from schemathesis.core.result import Ok

from tests.api_support import api_bed

MAX_EXAMPLES = 8


def test_no_server_errors_on_generated_requests(tmp_path: Path) -> None:
    with api_bed(tmp_path, api_rate_limit_per_minute=0) as bed:
        app = bed.client.app
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        # An admin key: generated requests reach the handlers instead of stopping at 401.
        auth = {"Authorization": f"Bearer {bed.keys['admin']}"}
        tested = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            tested.append(operation.label)

            @hsettings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=operation.as_strategy())
            def check(case: Any) -> None:
                response = case.call(headers=auth)
                assert response.status_code < 500, (
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:500]}"
                )

            check()
        assert "POST /v1/ask" in tested and "POST /v1/collections/{name}/documents" in tested
        assert len(tested) >= 10


def test_openapi_document_lists_problem_responses(tmp_path: Path) -> None:
    with api_bed(tmp_path) as bed:
        doc = bed.client.get("/openapi.json").json()
    ask = doc["paths"]["/v1/ask"]["post"]
    assert {"401", "403", "404", "422", "429", "503"} <= set(ask["responses"])
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert hypothesis.__version__
