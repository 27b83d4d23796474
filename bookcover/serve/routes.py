"""Endpoints for people and scripts: the page, multipart predictions, explanations, metrics."""

from __future__ import annotations

import asyncio
from importlib import resources

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import UploadFile

from bookcover.errors import CoverError
from bookcover.serve.batcher import QueueFull
from bookcover.serve.model import UploadError
from bookcover.serve.responses import busy, error

router = APIRouter()
STATIC = resources.files("bookcover.serve") / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
MAX_FILES = 256
MAX_EXPLAINS_WAITING = 2  # LIME takes seconds a cover: more than this and the page is told to retry


@router.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text())


@router.get("/static/{name}")
async def static(name: str) -> Response:
    kind = STATIC_TYPES.get(name[name.rfind("."):]) if "." in name else None
    item = STATIC / name
    if kind is None or "/" in name or not item.is_file():
        return error(404, f"no such file: {name}")
    return Response(item.read_bytes(), media_type=kind)


@router.get("/v1/info")
async def info(request: Request) -> dict:
    state = request.app.state.serve
    m = state.model
    return {"model": "bookcover", "sha256": m.sha256, "levels": m.levels, "crop": m.crop,
            "providers": m.providers, "explain": state.explainer is not None,
            "max_body_mb": state.options.max_body_mb, "ready": state.ready}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    m = request.app.state.serve.metrics
    return Response(m.render(), media_type=m.content_type)


async def _uploads(request: Request) -> list[UploadFile] | Response:
    """The files of a multipart request, or the error response to send."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return error(400, "send covers as multipart/form-data file fields")
    form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        return error(400, "no files in the request: send one or more covers as multipart file fields")
    return files


def _decode(model, data: bytes) -> np.ndarray | str:
    try:
        return model.decode(data)
    except UploadError as exc:
        return str(exc)


@router.post("/v1/covers:predict")
async def predict(request: Request) -> Response:
    """Per cover: path, level, expected_level, probas, level_probs (predict --json), or path and
    error. 200 if any cover was predicted, 422 if none could be read."""
    state = request.app.state.serve
    try:
        ticket = state.batcher.admit()  # before the body is read: overload costs no memory
    except QueueFull as exc:
        return busy(str(exc))
    try:
        files = await _uploads(request)
        if isinstance(files, Response):
            return files
        names = [f.filename or f"file{j}" for j, f in enumerate(files)]
        blobs = [await f.read() for f in files]
        loop = asyncio.get_running_loop()
        decoded = await asyncio.gather(*(loop.run_in_executor(state.decode_pool, _decode, state.model, b)
                                         for b in blobs))
        good = [j for j, d in enumerate(decoded) if not isinstance(d, str)]
        records: dict[int, dict] = {}
        if good:
            pred = await state.batcher.submit(ticket, np.stack([decoded[j] for j in good]))
            records = dict(zip(good, state.model.records([names[j] for j in good], pred), strict=True))
    finally:
        ticket.release()
    out = [records.get(j) or {"path": names[j], "error": decoded[j]} for j in range(len(names))]
    if not good:
        reason = "; ".join(f"{r['path']}: {r['error']}" for r in out)
        return error(422, f"no readable cover: {reason}", predictions=out)
    return JSONResponse({"predictions": out})


@router.post("/v1/covers:explain")
async def explain(request: Request) -> Response:
    """The LIME overlay PNG of one uploaded cover (needs serve --checkpoint)."""
    state = request.app.state.serve
    if state.explainer is None:
        return error(404, "explanations are off: start the server with --checkpoint best.pt")
    if state.explains_waiting >= MAX_EXPLAINS_WAITING:
        return busy(f"{state.explains_waiting} explanations running")
    state.explains_waiting += 1
    try:
        files = await _uploads(request)
        if isinstance(files, Response):
            return files
        data = await files[0].read()
        loop = asyncio.get_running_loop()
        try:
            png = await loop.run_in_executor(state.explain_thread, state.explainer.overlay_png, data,
                                             state.model.spool)
        except CoverError as exc:
            return error(422, f"{files[0].filename}: {exc}")
    finally:
        state.explains_waiting -= 1
    return Response(png, media_type="image/png")
