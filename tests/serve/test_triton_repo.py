"""export --triton-repo: a Triton model repository whose config.pbtxt matches the ONNX graph."""

from __future__ import annotations

import filecmp

import onnx
from click.testing import CliRunner
from google.protobuf import text_format

from bookcover.serve.triton_repo import write_triton_repo

ONNX_TO_TRITON = {onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.FLOAT: "TYPE_FP32",
                  onnx.TensorProto.INT64: "TYPE_INT64"}


def graph_tensors(values) -> dict[str, tuple[str, list[int]]]:
    out = {}
    for v in values:
        t = v.type.tensor_type
        out[v.name] = (ONNX_TO_TRITON[t.elem_type], [d.dim_value for d in t.shape.dim])
    return out


def test_config_pbtxt_matches_the_onnx_graph(served, tmp_path):
    from tritonclient.grpc import model_config_pb2

    folder = write_triton_repo(served, tmp_path / "repo")
    assert filecmp.cmp(folder / "1" / "model.onnx", served / "model.onnx", shallow=False)
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == "bookcover" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size >= 1 and config.HasField("dynamic_batching")
    graph = onnx.load(str(served / "model.onnx")).graph
    for declared, values in ((config.input, graph.input), (config.output, graph.output)):
        want = graph_tensors(values)
        assert [t.name for t in declared] == list(want)
        for t in declared:
            dtype, dims = want[t.name]
            assert model_config_pb2.DataType.Name(t.data_type) == dtype
            item_dims = dims[1:]  # the graph's first axis is the batch: Triton's max_batch_size
            if item_dims:
                assert list(t.dims) == item_dims
            else:  # one value per item: dims [1] reshaped to a scalar
                assert list(t.dims) == [1] and list(t.reshape.shape) == []


def test_existing_model_folder_is_refused_before_any_work(tiny_run, tmp_path):
    from bookcover.cli import main

    (tmp_path / "repo" / "bookcover").mkdir(parents=True)
    (tmp_path / "repo" / "bookcover" / "mine.txt").write_text("keep")
    res = CliRunner().invoke(main, ["export", "--checkpoint", str(tiny_run / "best.pt"), "--out",
                                    str(tmp_path / "art"), "--triton-repo", str(tmp_path / "repo"), "--quiet"])
    assert res.exit_code == 2 and "already exists" in res.output
    assert not (tmp_path / "art").exists()
    assert (tmp_path / "repo" / "bookcover" / "mine.txt").read_text() == "keep"
