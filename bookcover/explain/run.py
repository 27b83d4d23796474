"""An explain run: many covers in, overlays + weights JSON + sheet + report.md out.

Three things overlap so that the device is rarely idle: worker processes prepare the next
covers (:class:`~bookcover.explain.prepare.CoverPipeline`), the main thread runs the model on
the current one, and a writer thread draws and saves the previous one's overlay and JSON.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from bookcover.explain.adapters import ExplainModel
from bookcover.explain.explainer import ExplainOptions, Explanation, explain_prepared
from bookcover.explain.faithfulness import faithfulness
from bookcover.explain.pointing import PointingRecord, badge_removal, box_mask, point, summarise
from bookcover.explain.prepare import CoverPipeline
from bookcover.explain.render import Picture, seen_mask, sheet, write_overlays
from bookcover.explain.report import weights_record, write_json, write_report
from bookcover.explain.targets import describe
from bookcover.outputs import prepare_out_dir, writing

COMMAND = "explain"  # the name its output folders are recorded under (bookcover.outputs)


@dataclass
class RunResult:
    explained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    pointing: dict = field(default_factory=dict)
    report: Path | None = None


def output_stem(path: Path, used: set[str]) -> str:
    """A unique file stem per cover (two covers may share a name in different folders)."""
    stem, k = path.stem, 1
    while stem in used:
        k += 1
        stem = f"{path.stem}-{k}"
    used.add(stem)
    return stem


def _write_cover(out: Path, stem: str, exp: Explanation, record: dict, source: Path, crop: int) -> None:
    with writing(out, f"{stem}.overlay.png", f"{stem}.overlay_lime.png", f"{stem}.weights.json"):
        write_overlays(exp, source, crop, out, stem)
        write_json(out / f"{stem}.weights.json", record)


def explain_covers(
    model: ExplainModel, covers: list[Path], out: Path, options: ExplainOptions, model_desc: str = "",
    quiet: bool = False, pipeline: CoverPipeline | None = None, overwrite: bool = False,
) -> RunResult:
    """Explain each cover, score faithfulness and (on synthetic covers) play the pointing game.

    ``pipeline`` prepares covers ahead in worker processes; without one, each cover is
    prepared inline when its turn comes. The outputs are identical either way. ``out`` follows
    the --out policy (bookcover.outputs).
    """
    out = prepare_out_dir(out, COMMAND, overwrite=overwrite)
    result = RunResult()
    rows, pictures, records, used = [], [], [], set()
    pipe = pipeline or CoverPipeline(0)
    writes: list[Future] = []
    with ThreadPoolExecutor(1, thread_name_prefix="explain-writer") as writer:
        prepared = pipe.prepare(covers, model.image_size, options)
        for cover in tqdm(prepared, total=len(covers), desc="explaining covers", unit="cover", disable=quiet):
            if cover.error is not None:
                result.skipped.append(cover.error)
                continue
            path = Path(cover.path)
            exp = explain_prepared(model, cover.prepared, options)
            faith = faithfulness(model, exp, seed=options.seed, batch=options.batch)
            stem = output_stem(path, used)
            record = weights_record(path.name, exp, options, faith, source=cover.path, output=stem)
            writes.append(writer.submit(_write_cover, out, stem, exp, record, path, model.crop))
            result.explained.append(cover.path)
            pictures.append(Picture(path.name, exp, path, model.crop))
            rows.append({
                "cover": stem, "source": cover.path, "level": exp.rank, "target": describe(exp.target, exp.task), "value": exp.value,
                "segments": exp.n_segments, "r2": exp.r2, "del": faith.deletion_auc,
                "rdel": faith.random_deletion_auc, "ins": faith.insertion_auc, "rins": faith.random_insertion_auc,
            })
            if cover.planted is not None:
                shape = exp.segments.shape
                scored = point(exp.segments, exp.weights, box_mask(cover.planted.badge_box, shape),
                               seen_mask(shape, model.crop, shape))
                records.append(PointingRecord(
                    cover.path, exp.rank, scored, badge_removal(model, path, cover.planted, cover.badge_pair),
                ))
        for done in writes:
            done.result()  # surface a failed write here
    if pipeline is None:
        pipe.close()
    if not result.explained:
        return result  # every cover failed: no report with an empty table (report stays None)
    if pictures:
        with writing(out, "sheet.png"):
            sheet(pictures, out / "sheet.png")
    result.pointing = summarise(records, model.num_levels)
    result.report = out / "report.md"
    with writing(out, "report.md"):
        write_report(result.report, model_desc, options, rows, result.skipped, result.pointing)
    return result
