"""The Open Inference Protocol (KServe v2) for the one model, JSON tensors and the binary extension.

Requests carry ``pixels`` as UINT8 [N, crop, crop, 3], either as JSON ``data`` (flat row-major
or nested) or, as tritonclient sends by default, in the binary tensor extension (the JSON header
is ``Inference-Header-Content-Length`` bytes long and raw tensors follow). Outputs are
``probas`` FP32 [N, K-1], ``level`` INT64 [N] (CORAL's rank; ``rank`` is accepted as its
Triton name) and ``level_probs`` FP32 [N, K]; binary when the request asks for it.
Spec: https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

INPUT_NAME = "pixels"
OUTPUTS = {"probas": ("FP32", "probas"), "level": ("INT64", "rank"), "level_probs": ("FP32", "level_probs"),
           "rank": ("INT64", "rank")}  # served name -> (datatype, key in the consumer's predictions)
DEFAULT_OUTPUTS = ("probas", "level", "level_probs")
HEADER_LENGTH = "inference-header-content-length"


class ProtocolError(Exception):
    """A v2 request this model cannot take: 400 with the message."""


def model_metadata(name: str, crop: int, levels: int, sha256: str, platform: str = "onnxruntime_onnx") -> dict:
    return {
        "name": name,
        "versions": ["1"],
        "platform": platform,
        "inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [-1, crop, crop, 3]}],
        "outputs": [
            {"name": "probas", "datatype": "FP32", "shape": [-1, levels - 1]},
            {"name": "level", "datatype": "INT64", "shape": [-1]},
            {"name": "level_probs", "datatype": "FP32", "shape": [-1, levels]},
        ],
        "sha256": sha256,
    }


def parse_request(body: bytes, header_length: str | None, crop: int) -> tuple[np.ndarray, list[tuple[str, bool]], Any]:
    """(pixels (N, crop, crop, 3) uint8, [(output name, binary?)], request id) or ProtocolError."""
    binary = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise ProtocolError("Inference-Header-Content-Length is not a number") from None
        if not 0 <= n <= len(body):
            raise ProtocolError("Inference-Header-Content-Length is larger than the body")
        body, binary = body[:n], body[n:]
    try:
        request = json.loads(body)
    except ValueError as exc:
        raise ProtocolError(f"body is not JSON ({exc})") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise ProtocolError("expected a JSON object with an 'inputs' list")
    inputs = request["inputs"]
    if len(inputs) != 1 or not isinstance(inputs[0], dict) or inputs[0].get("name") != INPUT_NAME:
        names = [i.get("name") for i in inputs if isinstance(i, dict)]
        raise ProtocolError(f"expected one input named {INPUT_NAME!r}, got {names}")
    pixels = _tensor(inputs[0], binary, crop)
    wanted = _outputs(request.get("outputs"), request.get("parameters") or {})
    return pixels, wanted, request.get("id")


def _tensor(spec: dict, binary: bytes, crop: int) -> np.ndarray:
    datatype, shape = spec.get("datatype"), spec.get("shape")
    if datatype != "UINT8":
        raise ProtocolError(f"{INPUT_NAME}: datatype must be UINT8, got {datatype!r}")
    if (not isinstance(shape, list) or len(shape) != 4 or not all(isinstance(d, int) for d in shape)
            or shape[0] < 1 or shape[1:] != [crop, crop, 3]):
        raise ProtocolError(f"{INPUT_NAME}: shape must be [N, {crop}, {crop}, 3] with N >= 1, got {shape}")
    count = int(np.prod(shape))
    size = (spec.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if size != count or len(binary) < size:
            raise ProtocolError(f"{INPUT_NAME}: binary_data_size {size} does not hold {shape} UINT8 values")
        return np.frombuffer(binary[:size], np.uint8).reshape(shape)
    data = spec.get("data")
    if data is None:
        raise ProtocolError(f"{INPUT_NAME}: no 'data' and no binary_data_size")
    try:
        arr = np.asarray(data)
    except ValueError:
        raise ProtocolError(f"{INPUT_NAME}: 'data' is not a regular array") from None
    if arr.size != count:
        raise ProtocolError(f"{INPUT_NAME}: 'data' has {arr.size} values, shape {shape} needs {count}")
    if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 255)):
        raise ProtocolError(f"{INPUT_NAME}: 'data' must be integers 0..255 (UINT8)")
    return arr.astype(np.uint8).reshape(shape)


def _outputs(requested: Any, parameters: dict) -> list[tuple[str, bool]]:
    default_binary = bool(parameters.get("binary_data_output", False))
    if requested is None:
        return [(name, default_binary) for name in DEFAULT_OUTPUTS]
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise ProtocolError("'outputs' must be a list of objects")
    wanted = []
    for o in requested:
        if o.get("name") not in OUTPUTS:
            raise ProtocolError(f"unknown output {o.get('name')!r}; this model has {list(DEFAULT_OUTPUTS)}")
        wanted.append((o["name"], bool((o.get("parameters") or {}).get("binary_data", default_binary))))
    return wanted


def build_response(name: str, request_id: Any, pred: dict[str, np.ndarray],
                   wanted: list[tuple[str, bool]]) -> tuple[bytes, dict[str, str]]:
    """(body, extra headers); binary outputs follow the JSON header as the extension says."""
    outputs, blobs = [], []
    for out_name, binary in wanted:
        datatype, key = OUTPUTS[out_name]
        value = np.ascontiguousarray(pred[key], dtype=np.float32 if datatype == "FP32" else np.int64)
        entry: dict[str, Any] = {"name": out_name, "datatype": datatype, "shape": list(value.shape)}
        if binary:
            blob = value.tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = value.ravel().tolist()
        outputs.append(entry)
    response: dict[str, Any] = {"model_name": name, "model_version": "1", "outputs": outputs}
    if request_id is not None:
        response["id"] = request_id
    header = json.dumps(response).encode()
    if not blobs:
        return header, {"content-type": "application/json"}
    return header + b"".join(blobs), {"content-type": "application/octet-stream",
                                      "inference-header-content-length": str(len(header))}
