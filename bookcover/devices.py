"""Which torch device a command runs on: one rule for every feature."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """auto: the GPU when there is one, else the CPU; anything else is taken as torch spells it,
    once bookcover.options.check_device has found it on this machine (else one line, exit 2)."""
    from bookcover.options import check_device

    name = check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def onnx_providers(name: str = "auto") -> list:
    """onnxruntime execution providers for a --device: cuda gets the CUDA provider or a one-line
    refusal, never a silent CPU run; auto takes CUDA when both onnxruntime and a GPU offer it."""
    import onnxruntime as ort

    from bookcover.errors import UsageError

    text = str(name).strip().lower()
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if text == "cpu":
        return ["CPUExecutionProvider"]
    if text == "auto":
        return (["CUDAExecutionProvider"] if has_cuda and torch.cuda.is_available() else []) + ["CPUExecutionProvider"]
    if text == "cuda" or text.startswith("cuda:"):
        if not has_cuda:
            raise UsageError(f"--device {name}: this onnxruntime has no CUDA provider (install onnxruntime-gpu), "
                             "so the ONNX model would run on the CPU; use --device cpu")
        index = int(text.split(":", 1)[1]) if ":" in text else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise UsageError(f"--device {name}: an ONNX model runs on cpu or cuda")


def require_onnx_device(session, name: str) -> None:
    """Refuse a session that fell back to the CPU when --device asked for CUDA (onnxruntime only warns)."""
    from bookcover.errors import UsageError

    text = str(name).strip().lower()
    if (text == "cuda" or text.startswith("cuda:")) and "CUDAExecutionProvider" not in session.get_providers():
        raise UsageError(f"--device {name}: onnxruntime could not start its CUDA provider (see its warning above); "
                         "use --device cpu")
