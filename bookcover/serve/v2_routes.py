"""The Open Inference Protocol endpoints (health, metadata, infer) over the batcher."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bookcover import __version__
from bookcover.serve.batcher import QueueFull
from bookcover.serve.model import MODEL_NAME
from bookcover.serve.responses import busy, error, unknown_model
from bookcover.serve.v2 import HEADER_LENGTH, ProtocolError, build_response, model_metadata, parse_request

router = APIRouter()


@router.get("/v2")
async def server_metadata() -> dict:
    return {"name": "bookcover-fast", "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/v2/health/live")
async def live() -> dict:
    return {"live": True}


@router.get("/v2/health/ready")
async def ready(request: Request):
    if request.app.state.serve.ready:
        return {"ready": True}
    return JSONResponse({"ready": False, "error": "warming up the model"}, status_code=503)


@router.get("/v2/models/{name}")
@router.get("/v2/models/{name}/versions/{version}")
async def metadata(request: Request, name: str, version: str = "1"):
    state = request.app.state.serve
    if name != MODEL_NAME or version != "1":
        return unknown_model(f"{name}/{version}" if version != "1" else name, MODEL_NAME)
    m = state.model
    return model_metadata(MODEL_NAME, m.crop, m.levels, m.sha256)


@router.get("/v2/models/{name}/ready")
@router.get("/v2/models/{name}/versions/{version}/ready")
async def model_ready(request: Request, name: str, version: str = "1"):
    if name != MODEL_NAME or version != "1":
        return unknown_model(name, MODEL_NAME)
    return await ready(request)


@router.post("/v2/models/{name}/infer")
@router.post("/v2/models/{name}/versions/{version}/infer")
async def infer(request: Request, name: str, version: str = "1"):
    state = request.app.state.serve
    if name != MODEL_NAME or version != "1":
        return unknown_model(name, MODEL_NAME)
    try:
        ticket = state.batcher.admit()
    except QueueFull as exc:
        return busy(str(exc))
    try:
        body = await request.body()
        try:  # JSON tensors can be megabytes: parsed in the decode pool, off the event loop
            pixels, wanted, request_id = await asyncio.get_running_loop().run_in_executor(
                state.decode_pool, parse_request, body, request.headers.get(HEADER_LENGTH), state.model.crop)
        except ProtocolError as exc:
            return error(400, str(exc))
        pred = await state.batcher.submit(ticket, pixels)
    finally:
        ticket.release()
    content, headers = build_response(MODEL_NAME, request_id, pred, wanted)
    return Response(content, headers=headers)
