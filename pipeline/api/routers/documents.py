"""Collections and their documents: list, upload (an indexing job), delete."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from verirag.pipeline.api.deps import (
    AdminKey,
    ReadKey,
    ServicesDep,
    WriteKey,
    authorize_collection,
)
from verirag.pipeline.api.deps import existing_collection as _existing
from verirag.pipeline.api.errors import ProblemError
from verirag.pipeline.api.schemas import (
    CollectionDropped,
    CollectionOut,
    DeletedDocument,
    DeleteResult,
    DocumentOut,
    DocumentPage,
    JobAccepted,
    Problem,
    UploadedFile,
    WhoAmI,
)
from verirag.pipeline.api.uploads import sanitize_filename, save_upload

router = APIRouter(prefix="/v1", tags=["collections"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem} for status in (401, 403, 404, 409, 413, 422, 429, 503)
}


@router.get("/me", response_model=WhoAmI, responses=_ERRORS)
def whoami(key: ReadKey, services: ServicesDep) -> WhoAmI:
    """The calling key: its name, scope and the existing collections it may use (what the web
    page shows after signing in)."""
    return WhoAmI(
        name=key.name or key.prefix,
        scope=key.scope,
        all_collections=key.all_collections,
        collections=[n for n in services.collections() if key.covers(n)],
    )


@router.get("/collections", response_model=list[CollectionOut], responses=_ERRORS)
def list_collections(key: ReadKey, services: ServicesDep) -> list[CollectionOut]:
    """The collections this key may see (others are not even named)."""
    return [CollectionOut(name=n) for n in services.collections() if key.covers(n)]


@router.put("/collections/{name}", status_code=201, response_model=CollectionOut, responses=_ERRORS)
async def create_collection(
    name: str, key: AdminKey, services: ServicesDep, response: Response
) -> CollectionOut:
    """Create an empty collection with the server's embedder (admin): 201, or 200 when it
    exists already. Uploading to a new name also creates one."""
    collection = authorize_collection(key, name)
    created = await services.run_indexing(lambda: services.create_collection(collection))
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/collections/{collection}/documents"
    return CollectionOut(name=collection)


@router.delete("/collections/{name}", response_model=CollectionDropped, responses=_ERRORS)
async def drop_collection(name: str, key: AdminKey, services: ServicesDep) -> CollectionDropped:
    """Remove a collection with its documents, uploaded files and the review items that quote
    it (admin). Waits for an indexing job that is writing to it."""
    collection = _existing(services, key, name)
    removed = await services.run_indexing(lambda: services.drop_collection(collection))
    return CollectionDropped(collection=collection, review_items_removed=removed)


@router.get("/collections/{name}/documents", response_model=DocumentPage, responses=_ERRORS)
def list_documents(
    name: str,
    key: ReadKey,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DocumentPage:
    """One page of the collection's documents, ordered by source."""
    collection = _existing(services, key, name)
    store = services.rag.store(collection)
    view = services.source_view(key)
    return DocumentPage(
        collection=collection,
        total=store.count("documents"),
        offset=offset,
        limit=limit,
        items=[
            DocumentOut.of(replace(d, source=view(collection, d.source)))
            for d in store.documents(limit=limit, offset=offset)
        ],
    )


@router.delete(
    "/collections/{name}/documents/{doc_id:path}",
    response_model=DeleteResult,
    responses=_ERRORS,
)
async def delete_document(
    name: str, doc_id: str, key: WriteKey, services: ServicesDep
) -> DeleteResult:
    """Delete one document by its exact id (no path or prefix matching over HTTP)."""
    collection = _existing(services, key, name)
    store = services.rag.store(collection)
    if await run_in_threadpool(store.doc_state, doc_id) is None:
        raise ProblemError(
            404,
            f"no document with that id in collection '{collection}'",
            kind="unknown-document",
        )
    deleted = await services.run(lambda: services.delete_document(collection, doc_id))
    view = services.source_view(key)
    return DeleteResult(
        collection=collection,
        deleted=[DeletedDocument(doc_id=d, source=view(collection, s)) for d, s in deleted],
    )


@router.post(
    "/collections/{name}/documents",
    status_code=202,
    response_model=JobAccepted,
    responses=_ERRORS,
)
async def upload_documents(
    name: str,
    key: WriteKey,
    services: ServicesDep,
    response: Response,
    files: Annotated[list[UploadFile], File(description="one or more documents")],
) -> JobAccepted:
    """Save the files (sanitised names) and index them in the background: 202 and a job.

    A file that cannot be read is reported in the job and indexes nothing; the other files
    are indexed, and nothing already in the collection is lost. Uploading a file with the
    name of an earlier upload replaces that document.
    """
    collection = authorize_collection(key, name)  # created on first upload, like the CLI
    s = services.settings
    if len(files) > s.api_max_upload_files:
        raise ProblemError(
            422,
            f"{len(files)} files sent; at most {s.api_max_upload_files} per request",
            kind="too-many-files",
        )
    names = [sanitize_filename(f.filename or "") for f in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ProblemError(
            422,
            f"several files would be saved as {', '.join(duplicates)}; rename them",
            kind="duplicate-filename",
        )
    # Staged first, so that a request refused half-way (a file over the limit) leaves no
    # file behind and replaces no earlier upload.
    staging = services.settings.data_dir / "uploads" / ".staging" / uuid.uuid4().hex
    try:
        sizes = [
            await save_upload(f, staging / n, s.api_max_upload_bytes, f"{i} of {len(files)}")
            for i, (f, n) in enumerate(zip(files, names, strict=True), start=1)
        ]
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # The job owns the staged files now: they replace earlier uploads when it starts, and a
    # refused job (503) removes them and changes nothing.
    job = services.start_job(collection, names, staging)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobAccepted(
        job_id=job.id,
        status=job.status,
        collection=collection,
        files=[
            UploadedFile(filename=f.filename or "", saved_as=n, bytes=b)
            for f, n, b in zip(files, names, sizes, strict=True)
        ],
        location=f"/v1/jobs/{job.id}",
    )
