"""An explain run: many covers in, overlays + weights JSON + sheet + report.md out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bookcover.data.images import load_cover
from bookcover.errors import BookcoverError, CoverError
from bookcover.explain.adapters import ExplainModel
from bookcover.explain.explainer import ExplainOptions, explain_image
from bookcover.explain.faithfulness import faithfulness
from bookcover.explain.pointing import PointingRecord, badge_removal, box_mask, hits, planted_cover, summarise
from bookcover.explain.render import overlay, save_png, sheet
from bookcover.explain.report import weights_record, write_json, write_report
from bookcover.explain.targets import describe
from bookcover.runs import prepare_out_dir

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
EXPLAIN_OUTPUTS = ("*.overlay.png", "*.weights.json", "sheet.png", "report.md")  # what --overwrite may replace


@dataclass
class RunResult:
    explained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    pointing: dict = field(default_factory=dict)
    report: Path | None = None


def images_in(folder: Path) -> list[Path]:
    """Image files of a folder, in natural order (2.jpg before 10.jpg)."""
    if not folder.is_dir():
        raise BookcoverError(f"{folder}: not a folder")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: (int(p.stem) if p.stem.isdigit() else float("inf"), p.name))


def output_stem(path: Path, used: set[str]) -> str:
    """A unique file stem per cover (two covers may share a name in different folders)."""
    stem, k = path.stem, 1
    while stem in used:
        k += 1
        stem = f"{path.stem}-{k}"
    used.add(stem)
    return stem


def explain_covers(
    model: ExplainModel, covers: list[Path], out: Path, options: ExplainOptions, model_desc: str = "",
    quiet: bool = False,
    overwrite: bool = False,
) -> RunResult:
    """Explain each cover, score faithfulness and (on synthetic covers) play the pointing game.

    out follows the --out policy (bookcover.runs).
    """
    out = prepare_out_dir(out, overwrite=overwrite, ours=EXPLAIN_OUTPUTS)
    result = RunResult()
    rows, pictures, records, used = [], [], [], set()
    for path in tqdm(covers, desc="explaining covers", unit="cover", disable=quiet):
        try:
            image = load_cover(path, model.image_size)
        except CoverError as exc:
            result.skipped.append(str(exc))
            continue
        exp = explain_image(model, image, options)
        faith = faithfulness(model, exp, seed=options.seed, batch=options.batch)
        stem = output_stem(Path(path), used)
        save_png(overlay(exp), out / f"{stem}.overlay.png")
        write_json(out / f"{stem}.weights.json", weights_record(Path(path).name, exp, options, faith))
        result.explained.append(str(path))
        pictures.append((Path(path).name, exp))
        rows.append({
            "cover": Path(path).name, "level": exp.rank, "target": describe(exp.target, exp.task), "value": exp.value,
            "segments": exp.n_segments, "r2": exp.r2, "del": faith.deletion_auc, "rdel": faith.random_deletion_auc,
            "ins": faith.insertion_auc, "rins": faith.random_insertion_auc,
        })
        planted = planted_cover(path)
        if planted is not None and planted.badge_box is not None:
            on_badge = hits(exp.segments, box_mask(planted.badge_box, exp.segments.shape))
            top = int(exp.by_weight()[0])
            records.append(PointingRecord(
                Path(path).name, exp.rank, bool(on_badge[top]), float(np.mean(on_badge)),
                badge_removal(model, path, planted),
            ))
    if pictures:
        sheet(pictures, out / "sheet.png")
    result.pointing = summarise(records, model.num_levels)
    result.report = out / "report.md"
    write_report(result.report, model_desc, options, rows, result.skipped, result.pointing)
    return result
