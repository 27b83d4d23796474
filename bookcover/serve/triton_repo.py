"""The Triton Inference Server handoff: a model repository built from a verified artifact.

``DIR/bookcover/config.pbtxt`` + ``DIR/bookcover/1/model.onnx``. Triton (or KServe with the
Triton runtime) then serves the same verified graph with its own dynamic batching, over the same
Open Inference Protocol that ``bookcover-fast serve`` speaks. The config is derived from the
ONNX graph itself (names, element types, per-item dims), so it cannot drift from the model.
Triton names the outputs as the graph does: ``rank`` is what ``serve`` calls ``level``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bookcover.errors import UsageError
from bookcover.serve.model import MODEL_NAME, ServedModel

# onnx TensorProto element type -> Triton's DataType name (model_config.proto)
TRITON_TYPES = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 6: "TYPE_INT32", 7: "TYPE_INT64",
                9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64"}
DEFAULT_MAX_BATCH = 64
DEFAULT_DELAY_US = 2000


def check_target(repo: str | Path, name: str = MODEL_NAME) -> Path:
    """The model folder to create; refused (one line) if it exists: nothing already there is touched."""
    folder = Path(repo) / name
    if folder.exists():
        raise UsageError(f"--triton-repo: {folder} already exists; remove it or give another repository")
    return folder


def graph_io(model_path: str | Path) -> tuple[list[tuple[str, int, list]], list[tuple[str, int, list]]]:
    """[(name, onnx element type, dims without the batch axis)] for the graph's inputs and outputs."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph

    def rows(values) -> list[tuple[str, int, list]]:
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            out.append((v.name, t.elem_type, dims[1:]))
        return out

    return rows(graph.input), rows(graph.output)


def _tensor_block(name: str, elem_type: int, dims: list) -> str:
    if elem_type not in TRITON_TYPES:
        raise UsageError(f"{name}: ONNX element type {elem_type} has no Triton equivalent here")
    lines = [f'    name: "{name}"', f"    data_type: {TRITON_TYPES[elem_type]}"]
    if dims:
        lines.append(f"    dims: [ {', '.join(str(d) for d in dims)} ]")
    else:  # one value per item: Triton needs dims [1], reshaped to the graph's scalar-per-item
        lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
    return "  {\n" + "\n".join(lines) + "\n  }"


def config_text(model_path: str | Path, name: str = MODEL_NAME, max_batch_size: int = DEFAULT_MAX_BATCH,
                delay_us: int = DEFAULT_DELAY_US) -> str:
    """config.pbtxt (protobuf text format of Triton's ModelConfig) for an ONNX graph with a batch axis."""
    inputs, outputs = graph_io(model_path)
    return "\n".join([
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch_size}",
        "input [\n" + ",\n".join(_tensor_block(*r) for r in inputs) + "\n]",
        "output [\n" + ",\n".join(_tensor_block(*r) for r in outputs) + "\n]",
        "dynamic_batching {",
        f"  max_queue_delay_microseconds: {delay_us}",
        "}",
        "version_policy: { latest: { num_versions: 1 } }",
        "",
    ])


def write_triton_repo(artifact: str | Path, repo: str | Path, expect_sha256: str | None = None,
                      max_batch_size: int = DEFAULT_MAX_BATCH, delay_us: int = DEFAULT_DELAY_US) -> Path:
    """Verify the artifact (as serve does), then write ``repo/bookcover/{config.pbtxt, 1/model.onnx}``.
    The model folder appears whole or not at all."""
    served = ServedModel.load(artifact, expect_sha256, threads=1, providers=["CPUExecutionProvider"])
    target = check_target(repo)
    work = target.with_name(f".{target.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "1").mkdir(parents=True)
    try:
        shutil.copyfile(served.folder / "model.onnx", work / "1" / "model.onnx")
        (work / "config.pbtxt").write_text(config_text(work / "1" / "model.onnx", MODEL_NAME, max_batch_size, delay_us))
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
