"""Dependencies: the services, the caller's key (authenticated, rate-limited, scoped), and
collection access.

Order matters for what a caller can learn: authentication (401), then scope (403), then the
collection check (403 whether the collection exists or not), and only then existence (404).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from verirag.pipeline.api.errors import ProblemError
from verirag.pipeline.api.keys import ApiKey, Scope
from verirag.pipeline.api.services import Services
from verirag.retrievers.store import CollectionError, validate_name

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or `X-API-Key: <key>`")

_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="verirag"'}


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _authenticate(
    services: Services,
    bearer: HTTPAuthorizationCredentials | None,
    header_key: str | None,
) -> ApiKey:
    secret = bearer.credentials if bearer is not None else header_key
    if not secret:
        raise ProblemError(
            401,
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            kind="unauthenticated",
            headers=_UNAUTHENTICATED,
        )
    key = services.keys.authenticate(secret.strip())
    if key is None:
        raise ProblemError(
            401,
            "the API key is invalid or has been revoked",
            kind="unauthenticated",
            headers=_UNAUTHENTICATED,
        )
    wait = services.rate_limiter.acquire(key.id)
    if wait > 0:
        raise ProblemError(
            429,
            f"rate limit of {services.rate_limiter.per_minute} requests per minute for this key "
            f"exceeded; retry in {math.ceil(wait)}s",
            kind="rate-limited",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    return key


def require(scope: Scope) -> Callable[..., ApiKey]:
    """A dependency that yields the caller's key when it has at least `scope`."""

    def dependency(
        services: ServicesDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_header)],
    ) -> ApiKey:
        return _with_scope(_authenticate(services, bearer, header_key), scope)

    return dependency


def _with_scope(key: ApiKey, scope: Scope) -> ApiKey:
    if not key.allows(scope):
        raise ProblemError(
            403,
            f"this API key has scope '{key.scope}'; this operation needs '{scope}'",
            kind="forbidden-scope",
        )
    return key


def metrics_access(
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header)],
) -> None:
    """/metrics needs an admin key unless the operator made it public (`api_metrics_public`)."""
    if not services.settings.api_metrics_public:
        _with_scope(_authenticate(services, bearer, header_key), "admin")


ReadKey = Annotated[ApiKey, Depends(require("read"))]
WriteKey = Annotated[ApiKey, Depends(require("write"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]


def authorize_collection(key: ApiKey, name: str) -> str:
    """403 for any collection the key does not cover, existing or not (no existence leak)."""
    if not key.covers(name):
        raise ProblemError(
            403,
            "this API key does not give access to the requested collection",
            kind="forbidden-collection",
        )
    try:
        return validate_name(name)
    except CollectionError as exc:
        raise ProblemError(422, str(exc), kind="invalid-collection") from exc


def existing_collection(services: Services, key: ApiKey, name: str) -> str:
    authorize_collection(key, name)
    if not services.collection_exists(name):
        raise ProblemError(404, f"collection '{name}' does not exist", kind="unknown-collection")
    return name
