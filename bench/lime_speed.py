"""LIME speed, side by side: lime_image (its defaults, and batch_size=num_samples) vs ours.

    python -m bench.lime_speed                 # CPU ratio table (markdown) for bench/RESULTS.md
    python -m bench.lime_speed --gpu OUT_DIR   # GPU check: 5,000 perturbations on ResNet-34
    python -m bench.lime_speed --gpu OUT_DIR --covers DIR   # ... and many covers: the marginal cover

All three paths explain the same cover with the same model, segmentation and sample count. lime
runs at its defaults (top_labels=5; its five ridge fits cost milliseconds) with its per-sample
progress bar switched off, which only flatters lime. The tiny model shows LIME's own overhead;
ResNet-34 shows how much of it is left when the network dominates. The quickshift segmentation
is the same call on both sides and is timed on its own: it is the floor neither side can go under.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bookcover.classifier.model import CoralResNet34
from bookcover.data.images import load_cover
from bookcover.explain.adapters import TorchModel, lime_classifier_fn
from bookcover.explain.explainer import ExplainOptions, explain_image, predict_masks
from bookcover.explain.masks import draw_masks
from bookcover.explain.perturb import fill_image
from bookcover.explain.segment import lime_segmentation_fn, segment
from bookcover.explain.surrogate import fit_surrogate
from tests.explain.tiny_model import TinyCoral

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "goodreads-sample" / "images"


def sample_cover(size: int) -> np.ndarray:
    """A real Goodreads cover when the shared sample is present, else a plain procedural one."""
    files = sorted(SAMPLE_DIR.glob("*.jpg")) if SAMPLE_DIR.is_dir() else []
    if files:
        return load_cover(files[0], (size, size))
    ramp = np.linspace(40, 220, size, dtype=np.float64)
    image = np.stack([ramp[:, None].repeat(size, 1), ramp[None, :].repeat(size, 0), np.full((size, size), 90.0)], -1)
    q = size // 4
    image[q : 2 * q, q : 3 * q] = (230, 200, 30)  # a title band and a badge-like block
    image[3 * q :, 3 * q :] = (20, 20, 160)
    return image.astype(np.uint8)


def make_model(kind: str, size: int, crop: int, device: str = "cpu") -> TorchModel:
    torch.manual_seed(0)
    module = TinyCoral() if kind == "tiny" else CoralResNet34()
    module = module.to(device).to(memory_format=torch.channels_last).eval()
    return TorchModel(module, (size, size), crop, 5)


def run_lime(model: TorchModel, image: np.ndarray, samples: int, batch_size: int) -> None:
    from lime import lime_image

    lime_image.tqdm = lambda it, **kw: it  # no per-sample progress bar: time lime's work, not its display
    explainer = lime_image.LimeImageExplainer(random_state=0)
    explainer.explain_instance(image, lime_classifier_fn(model), num_samples=samples, batch_size=batch_size,
                               segmentation_fn=lime_segmentation_fn(0))  # the same superpixels as ours


def run_ours(model: TorchModel, image: np.ndarray, samples: int) -> None:
    explain_image(model, image, ExplainOptions(samples=samples, seed=0))


def run_ours_synced(model: TorchModel, image: np.ndarray, samples: int) -> None:
    run_ours(model, image, samples)
    torch.cuda.synchronize()


def timed(fn, *args, repeat: int = 1) -> float:
    """Best of ``repeat`` wall times of fn(*args) (after a warm-up): robust on a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


CASES = [  # model kind, cache size, crop, repeats
    ("tiny", 128, 120, 3),  # the study's input size
    ("tiny", 72, 64, 3),  # the quick preset's input size
    ("resnet34", 72, 64, 1),
]


def cpu_table(samples: int = 1000) -> str:
    rows = []
    for kind, size, crop, repeat in CASES:
        model, image = make_model(kind, size, crop), sample_cover(size)
        run_ours(model, image, 50)  # warm-up: allocator, oneDNN kernels
        t_default = timed(run_lime, model, image, samples, 10, repeat=repeat)
        t_batched = timed(run_lime, model, image, samples, samples, repeat=repeat)
        t_ours = timed(run_ours, model, image, samples, repeat=repeat)
        t_seg = timed(segment, image, repeat=repeat)
        rows.append((kind, size, crop, t_default, t_batched, t_ours, t_seg))
    lines = [
        f"{samples} samples, quickshift (kernel_size=4, max_dist=200, ratio=0.2), one explained output, best of "
        "the repeats shown.",
        "",
        "| model | input | lime defaults (batch 10) | lime, batch_size=num_samples | ours | "
        "ours vs lime defaults | ours vs lime batched | quickshift alone (in every column) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, size, crop, a, b, c, seg in rows:
        lines.append(f"| {kind} | {size} px -> {crop} crop | {a:.2f} s | {b:.2f} s | {c:.2f} s | "
                     f"**{a / c:.1f}x** | {b / c:.1f}x | {seg:.2f} s |")
    return "\n".join(lines)


def gpu_check(out: Path, samples: int = 5000) -> dict:
    """5,000 perturbations of one cover through ResNet-34 (128 -> 120 px) on the GPU (target:
    < 0.15 s end to end)."""
    out.mkdir(parents=True, exist_ok=True)
    model, image = make_model("resnet34", 128, 120, "cuda"), sample_cover(128)
    rs = np.random.RandomState(0)
    rs.randint(0, 1000)
    try:
        segments = segment(image)
    except ImportError:  # no scikit-image on the GPU box: 8x8 blocks time the device part just as well
        segments = (np.arange(128)[:, None] // 16) * 8 + np.arange(128)[None, :] // 16
    masks = draw_masks(rs, samples, int(segments.max()) + 1)
    fill = fill_image(image, segments)
    masks_t = torch.from_numpy(masks).cuda()

    def device_part() -> None:  # perturb + predict + surrogate, everything that runs on the GPU
        out_ = predict_masks(model, image, segments, fill, masks_t)
        fit_surrogate(masks_t, out_["probas"][:, 0].double())
        torch.cuda.synchronize()

    for _ in range(2):
        device_part()  # warm-up: cuDNN algorithm choice, allocator
    device_s = sorted(timed(device_part) for _ in range(5))[2]
    try:
        end_to_end = sorted(timed(run_ours_synced, model, image, samples) for _ in range(3))[1]
    except ImportError:
        end_to_end = None  # segmentation needs scikit-image
    result = {
        "device": torch.cuda.get_device_name(),
        "samples": samples,
        "segments": int(segments.max()) + 1,
        "segmenter": "quickshift" if end_to_end is not None else "8x8 grid (no scikit-image)",
        "device_seconds_median": device_s,
        "end_to_end_seconds_median": end_to_end,
        "target_end_to_end_seconds": 0.15,
        "meets_target": end_to_end is not None and end_to_end < 0.15,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    (out / "lime_gpu.json").write_text(json.dumps(result, indent=2))
    return result


def many_covers(folder: Path, out: Path, samples: int = 5000, n: int = 16, device: str = "cuda", kind: str = "resnet34") -> dict:
    """The marginal cost of one more cover in `explain --images`: explain_covers (faithfulness,
    pointing game and files included) on 1 and on n covers in one warm process, with the
    worker pipeline and without, on ResNet-34 at 128 -> 120 px. Marginal = (t_n - t_1) / (n - 1)."""
    from bookcover.data.images import find_images
    from bookcover.explain.prepare import CoverPipeline, resolve_workers
    from bookcover.explain.run import explain_covers

    covers = find_images(folder)[:n]
    model = make_model(kind, 128, 120, device)
    options = ExplainOptions(samples=samples, seed=0)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    result = {"covers": len(covers), "samples": samples, "model": kind, "device": device}
    for label, workers in (("pipeline", resolve_workers("auto", device, len(covers))), ("inline", 0)):
        with CoverPipeline(workers) as pipe:
            explain_covers(model, covers[:2], out / f"warm-{label}", options, quiet=True, pipeline=pipe)  # warm-up
            times = {}
            for k in (1, len(covers)):
                sync()
                t0 = time.perf_counter()
                explain_covers(model, covers[:k], out / f"{label}-{k}", options, quiet=True, pipeline=pipe)
                sync()
                times[k] = time.perf_counter() - t0
        marginal = (times[len(covers)] - times[1]) / max(1, len(covers) - 1)
        result[label] = {"workers": workers, "one_cover_s": times[1], f"{len(covers)}_covers_s": times[len(covers)],
                         "marginal_per_cover_s": marginal}
    result["target_marginal_s"] = 0.12
    result["meets_target"] = result["pipeline"]["marginal_per_cover_s"] <= 0.12
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", type=Path, default=None, help="run the GPU check and write lime_gpu.json here")
    parser.add_argument("--covers", type=Path, default=None,
                        help="with --gpu: also time explain on 1 and 16 covers of this folder (lime_many.json)")
    parser.add_argument("--samples", type=int, default=None)
    args = parser.parse_args()
    if args.gpu is not None:
        print(json.dumps(gpu_check(args.gpu, args.samples or 5000), indent=2))
        if args.covers is not None:
            many = many_covers(args.covers, args.gpu / "lime_many", args.samples or 5000)
            (args.gpu / "lime_many.json").write_text(json.dumps(many, indent=2))
            print(json.dumps(many, indent=2))
    else:
        print(cpu_table(args.samples or 1000))


if __name__ == "__main__":
    main()
