"""One interface over the two ways to run the classifier: a torch checkpoint or an ONNX artifact.

Explanations need only: the size covers are resized to, the center crop, the number of levels,
the device to build perturbations on, and two steps of prediction split apart:

* ``prepare``: center-cropped uint8 (N, crop, crop, 3) -> the model's per-pixel input, still
  NHWC (normalised float for torch, uint8 for the ONNX artifact);
* ``run``: that input -> probas (N, K-1) and level_probs (N, K).

``prepare`` works pixel by pixel, so a perturbation can be built directly in input space,
``where(keep, prepare(image), prepare(fill))``, bit-identical to preparing each perturbed cover
but without a uint8 round trip per sample. :func:`predict_chunked` pushes thousands of such
perturbations through either model in as few calls as memory allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from bookcover.coral import reference as coral_reference
from bookcover.data.batches import center_crop, normalise
from bookcover.errors import ArtifactError, UsageError

ONNX_FILE = "model.onnx"
CPU_CHUNK = 512  # at most this many samples per call on CPU: enough to amortise per-call overhead
# ...and at most this many bytes of float input per call: building 1,000 120 px perturbations at
# once is memory-bound (173 MB); 24 MiB chunks measured 0.44 s -> 0.30 s end to end at 128 px.
CPU_CHUNK_INPUT_BYTES = 24 * 2**20
# On CUDA, calls take a power of two of samples, at most this many, and a last partial chunk is
# padded up to the next power of two (at least CUDA_MIN_CHUNK): a handful of batch shapes per
# process instead of a new one for every cover (5,000 samples, 22 x (n + 1) faithfulness rows,
# ...), each of which costs cuDNN a new execution plan.
CUDA_MAX_CHUNK = 2048
CUDA_MIN_CHUNK = 16


class ExplainModel(Protocol):
    image_size: tuple[int, int]
    crop: int
    num_levels: int
    device: torch.device

    def prepare(self, pixels: torch.Tensor) -> torch.Tensor:
        """Center-cropped uint8 (N, crop, crop, 3) -> model input, NHWC, per pixel."""
        ...

    def run(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Prepared NHWC inputs -> probas (N, K-1), level_probs (N, K)."""
        ...

    def bytes_per_sample(self) -> int:
        """A generous estimate of the memory one sample needs during run."""
        ...


def predict(model: ExplainModel, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """uint8 (N, H, W, 3) covers at ``model.image_size`` -> probas, level_probs (one call)."""
    return model.run(model.prepare(center_crop(pixels.to(model.device), model.crop)))


@dataclass
class TorchModel:
    """A CORAL module (``forward(x)`` -> logit g and a ``coral_bias``, like CoralResNet34) on its device."""

    module: torch.nn.Module
    image_size: tuple[int, int]
    crop: int
    num_levels: int
    device: torch.device = field(init=False)

    def __post_init__(self) -> None:
        self.module.eval()
        self.device = next(self.module.parameters()).device

    def prepare(self, pixels: torch.Tensor) -> torch.Tensor:
        # normalise() returns an NCHW view of NHWC memory; permute back to its NHWC view.
        return normalise(pixels.to(self.device)).permute(0, 2, 3, 1)

    @torch.no_grad()
    def run(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        # The CORAL head is B x (K-1) sigmoids: the reference formula, so that explaining never
        # imports or JIT-compiles the fused kernels (seconds of a cold start on a GPU machine).
        logit = self.module(inputs.permute(0, 3, 1, 2)).float()  # channels_last NCHW, as eval_batch
        probas, _ = coral_reference.coral_predict(logit, self.module.coral_bias.float())
        return {"probas": probas, "level_probs": coral_reference.level_probabilities(probas)}

    def bytes_per_sample(self) -> int:
        # Peak activations of a ResNet at inference stay well under 64 float copies of the input.
        return self.crop * self.crop * 3 * 4 * 64


class OnnxModel:
    """An onnxruntime session for the artifact contract: uint8 ``pixels`` (B, crop, crop, 3).

    The artifact is verified and opened by export/predict.py's ``Artifact.load`` (through
    bookcover.consumer), the same code a production service runs: manifest hashes, and the
    model's sha256 when ``expect_sha256`` pins it.
    """

    def __init__(self, artifact: str | Path, expect_sha256: str | None = None, device: str = "cpu"):
        from bookcover.consumer import load_artifact
        from bookcover.devices import onnx_providers, require_onnx_device

        artifact = Path(artifact)
        if not (artifact.is_dir() or artifact.is_file()):
            raise ArtifactError(f"{artifact}: no such ONNX artifact folder")
        if artifact.is_dir() and not (artifact / ONNX_FILE).is_file():
            raise ArtifactError(f"{artifact}: no {ONNX_FILE} found (expected an ONNX artifact folder)")
        loaded = load_artifact(artifact, expect_sha256=expect_sha256, providers=onnx_providers(device))
        require_onnx_device(loaded.session, device)
        self.session = loaded.session
        h, w = loaded.input_spec["resize"]
        self.image_size = (int(h), int(w))
        self.crop = int(loaded.input_spec["crop"])
        self.device = torch.device("cpu")
        probe = self.run(torch.zeros((1, self.crop, self.crop, 3), dtype=torch.uint8))
        self.num_levels = int(probe["level_probs"].shape[1])

    def prepare(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.cpu()  # the artifact normalises inside the graph

    def run(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        x = np.ascontiguousarray(inputs.numpy(), dtype=np.uint8)
        probas, level_probs = self.session.run(["probas", "level_probs"], {"pixels": x})
        return {"probas": torch.from_numpy(probas), "level_probs": torch.from_numpy(level_probs)}

    def bytes_per_sample(self) -> int:
        return self.crop * self.crop * 3 * 4 * 64


def load_model(
    checkpoint: str | Path | None = None, onnx: str | Path | None = None, device: str = "auto",
    expect_sha256: str | None = None,
) -> ExplainModel:
    """The classifier to explain, from exactly one of a torch checkpoint or an ONNX artifact
    (verified; ``expect_sha256`` pins its model file)."""
    if (checkpoint is None) == (onnx is None):
        raise UsageError("give exactly one of --checkpoint or --onnx")
    if onnx is not None:
        return OnnxModel(onnx, expect_sha256, device)
    if expect_sha256 is not None:
        raise UsageError("--expect-sha256 pins an ONNX artifact's model; it needs --onnx")
    from bookcover.classifier import load_classifier

    clf = load_classifier(checkpoint, device)
    return TorchModel(clf.model, clf.image_size, clf.config.crop, clf.num_levels)


def _pow2_floor(n: int) -> int:
    return 1 << (max(1, n).bit_length() - 1)


def _pow2_ceil(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def auto_chunk(model: ExplainModel) -> int:
    """Samples per model call. CUDA: the largest power of two up to CUDA_MAX_CHUNK that half the
    free memory holds. CPU: up to CPU_CHUNK samples and CPU_CHUNK_INPUT_BYTES of input
    (bytes_per_sample counts 64 input copies)."""
    if model.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(model.device)
        return _pow2_floor(min(CUDA_MAX_CHUNK, max(1, int(free * 0.5) // model.bytes_per_sample())))
    input_bytes = max(1, model.bytes_per_sample() // 64)
    return max(32, min(CPU_CHUNK, CPU_CHUNK_INPUT_BYTES // input_bytes))


def predict_chunked(
    model: ExplainModel, n: int, make_chunk: Callable[[int, int], torch.Tensor], batch: int | None = None
) -> dict[str, torch.Tensor]:
    """Run the model on n prepared inputs built chunk by chunk by ``make_chunk(start, stop)``.

    Chunks hold ``batch`` covers (auto when None), so thousands of perturbations go through the
    model per call while memory stays bounded; on CUDA out-of-memory the chunk halves and retries,
    and (batch None) a last partial chunk is padded to a power of two (see CUDA_MAX_CHUNK).
    """
    chunk = batch or auto_chunk(model)
    pad = batch is None and model.device.type == "cuda"
    outs: dict[str, list[torch.Tensor]] = {"probas": [], "level_probs": []}
    start = 0
    while start < n:
        stop = min(start + chunk, n)
        try:
            inputs = make_chunk(start, stop)
            size = max(CUDA_MIN_CHUNK, _pow2_ceil(stop - start)) if pad else stop - start
            if size > stop - start:  # repeat the last sample: results of the real rows are unchanged
                inputs = torch.cat([inputs, inputs[-1:].expand(size - (stop - start), *inputs.shape[1:])])
            out = {k: v[: stop - start] for k, v in model.run(inputs).items()}
        except torch.cuda.OutOfMemoryError:
            if chunk == 1:
                raise
            torch.cuda.empty_cache()
            chunk = max(1, chunk // 2)
            continue
        for k in outs:
            outs[k].append(out[k])
        start = stop
    if not outs["probas"]:
        k = model.num_levels
        return {"probas": torch.zeros((0, k - 1)), "level_probs": torch.zeros((0, k))}
    return {k: torch.cat(v) for k, v in outs.items()}


def predict_pixels(model: ExplainModel, pixels: torch.Tensor, batch: int | None = None) -> dict[str, torch.Tensor]:
    """Predict uint8 (N, H, W, 3) covers already built, in chunks."""
    crop = center_crop(pixels, model.crop)
    return predict_chunked(model, pixels.shape[0], lambda a, b: model.prepare(crop[a:b].to(model.device)), batch)


LIME_OUTPUTS = ("level_probs", "probas", "expected")


def lime_classifier_fn(model: ExplainModel, batch: int | None = None, output: str = "level_probs"):
    """A batched ``classifier_fn`` for ``lime_image.LimeImageExplainer.explain_instance``.

    It takes lime's N x H x W x 3 uint8 array (covers at ``model.image_size``) and returns one
    column per lime label, as float64 numpy, moving the whole batch to the device in one call:

    * ``level_probs`` (default): (N, K), column k = P(level = k), a classifier's usual output;
    * ``probas``: (N, K-1), column k = P(level > k), what ``bookcover-fast explain --target proba``
      explains (label k = max(predicted level - 1, 0));
    * ``expected``: (N, 1), the expected level sum_k P(level > k) (``--target expected``, label 0).

    lime calls it every ``batch_size`` images (default 10), so pass ``batch_size=num_samples``.
    bookcover/explain/README.md shows how to reproduce the CLI's weights with lime exactly.
    """
    if output not in LIME_OUTPUTS:
        raise ValueError(f"unknown output {output!r}; choose one of {', '.join(LIME_OUTPUTS)}")

    def classifier_fn(images: np.ndarray) -> np.ndarray:
        pixels = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).to(model.device)
        out = predict_pixels(model, pixels, batch)
        if output == "expected":
            return out["probas"].double().sum(1, keepdim=True).cpu().numpy()
        return out[output].double().cpu().numpy()

    return classifier_fn
