"""What an explain run writes besides pictures: per-cover weights JSON and report.md.

The JSON holds no timings or timestamps, so the same cover, model and seed give the same file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bookcover.explain.explainer import ExplainOptions, Explanation
from bookcover.explain.faithfulness import Faithfulness
from bookcover.explain.targets import describe
from bookcover.jsonio import jsonable


def weights_record(
    name: str, exp: Explanation, options: ExplainOptions, faith: Faithfulness | None, source: str | None = None,
    output: str | None = None,
) -> dict:
    """The per-cover JSON: options, prediction, the surrogate and (optional) faithfulness.

    ``source``: the cover's path as given (two covers may share a file name); ``output``: the
    stem of this cover's files in the run folder.
    """
    area = np.bincount(exp.segments.ravel(), minlength=exp.n_segments)
    rec = {
        "cover": name,
        "source": source,
        "output": output,
        "options": options.to_dict(),
        "predicted_level": exp.rank,
        "probas": exp.probas,
        "target": describe(exp.target, exp.task),
        "target_value": exp.value,
        "intercept": exp.intercept,
        "r2": exp.r2,
        "local_pred": exp.local_pred,
        "segments": [
            {"id": int(i), "weight": float(exp.weights[i]), "pixels": int(area[i])} for i in range(exp.n_segments)
        ],
        "top_positive": [int(i) for i in exp.by_weight()[:5] if exp.weights[i] > 0],
    }
    if faith is not None:
        rec["faithfulness"] = faith.to_dict()
    return rec


def write_json(path: Path, record: dict) -> None:
    """The per-cover JSON, null for undefined numbers (e.g. R² of a constant target)."""
    path.write_text(json.dumps(jsonable(record), indent=1, sort_keys=True, allow_nan=False) + "\n")


def _f(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def write_report(
    path: Path, model_desc: str, options: ExplainOptions, rows: list[dict], skipped: list[str], pointing: dict
) -> None:
    """report.md: per-cover table, mean faithfulness against random orders, the pointing game."""
    lines = [
        "# Explain report",
        "",
        f"- model: {model_desc}",
        f"- segmenter {options.segmenter} on the model input "
        f"{f'resampled to {options.segment_size} px square' if options.segment_size else 'as it is'}, "
        f"{options.samples} samples, seed {options.seed}, "
        f"fill {'per-segment mean' if options.hide_color is None else options.hide_color}, target `{options.target}`",
        "- surrogate: lime's kernel (cosine distance, width 0.25), ridge alpha 1 with intercept",
        "",
        "## Faithfulness (deletion: lower is better; insertion: higher is better)",
        "",
        "Superpixels are hidden (deletion) or revealed (insertion) from the most positive weight down;"
        " the random columns average 10 random orders. AUC is in units of the target.",
        "",
        "| cover (output files) | source | level | target | segments | R² | deletion AUC | random | insertion AUC "
        "| random |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cover']} | `{r.get('source', r['cover'])}` | {r['level']} | {r['target']} = {_f(r['value'])} "
            f"| {r['segments']} | {_f(r['r2'])} | "
            f"{_f(r['del'])} | {_f(r['rdel'])} | {_f(r['ins'])} | {_f(r['rins'])} |"
        )
    if rows:
        mean = {k: float(np.mean([r[k] for r in rows])) for k in ("del", "rdel", "ins", "rins", "r2")}
        del_better = sum(r["del"] < r["rdel"] for r in rows)
        ins_better = sum(r["ins"] > r["rins"] for r in rows)
        lines += [
            f"| **mean over {len(rows)}** | | | | | {_f(mean['r2'])} | **{_f(mean['del'])}** | {_f(mean['rdel'])} | "
            f"**{_f(mean['ins'])}** | {_f(mean['rins'])} |",
            "",
            f"The explanation's order beats random on deletion for {del_better}/{len(rows)} covers and on insertion "
            f"for {ins_better}/{len(rows)}.",
        ]
    if pointing:
        p = pointing
        verdict = "it does" if p["removal_matters"] else "it does NOT, so the pointing game below means little"
        lines += [
            "",
            "## Pointing game (synthetic covers with a planted badge)",
            "",
            f"First, does the model use the badge? Re-rendering each of the {p['badge_covers']} badge covers without "
            f"its badge lowers the predicted level for {p['removal_level_lowered']} of them; the expected level drops "
            f"by {_f(p['removal_mean_expected_drop'])} on average: {verdict}.",
            "",
            f"Among the {p['high_level_badge_covers']} badge covers predicted in the top two levels "
            "(badge box scaled from 128x192 cover pixels to the model's input):",
            "",
            "| score | value | chance level |",
            "|---|---|---|",
            f"| hit rate: the most positive superpixel lies mostly (>= {p['hit_inside']:.0%}) inside the badge box "
            f"| {p['pointing_hits']}/{p['high_level_badge_covers']} = {_f(p['pointing_rate'])} "
            f"| {_f(p['pointing_chance'])} (a superpixel picked at random) |",
            f"| energy: share of the positive attribution mass inside the box | {_f(p['energy'])} "
            f"| {_f(p['energy_chance'])} (the box's share of the pixels the model sees) |",
            "",
            f"The top superpixel's area is {_f(p['top_area_over_box_median'])} times the badge box's (median): a "
            "superpixel much larger than the box cannot count as pointing at it.",
        ]
    if skipped:
        lines += ["", "## Skipped covers", ""] + [f"- {s}" for s in skipped]
    path.write_text("\n".join(lines) + "\n")
