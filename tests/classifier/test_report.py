"""The classifier's run pictures and report.md read well: whole-epoch ticks, no Python reprs."""

from __future__ import annotations

from bookcover.classifier.report import data_table, plot_curves


def test_data_summary_is_a_table_not_a_python_dict():
    summary = {"covers": 2500, "skipped": 0, "levels": 5, "per_level": [500, 500, 500, 500, 500],
               "split": {"train": 2000, "val": 250, "test": 250}, "image_size": [72, 72]}
    text = "\n".join(data_table(summary))
    assert "{" not in text and "[" not in text and "'" not in text
    assert "| split | train 2000, val 250, test 250 |" in text
    assert "| covers per level (0 = least popular) | 0: 500, 1: 500, 2: 500, 3: 500, 4: 500 |" in text
    assert "| resized to (px) | 72 x 72 |" in text


def test_curves_have_whole_epoch_ticks(tmp_path, monkeypatch):
    from bookcover import figures as figures_module

    figures = []
    monkeypatch.setattr("bookcover.classifier.report.save_figure", lambda fig, out: figures.append(fig))
    history = [{"epoch": e, "train_loss": 1.0 / e, "train_mae": 1.0 / e, "val_mae": 1.1 / e} for e in (1, 2)]
    plot_curves(history, tmp_path / "curves.png", middle_mae=1.2)
    fig = figures[0]
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    figures_module.pyplot().close(fig)
