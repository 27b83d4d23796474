"""The GAN report says which measure to trust at its sample size, and never leaves SWD and FID
contradicting each other unexplained (issue 11, item 20)."""

from bookcover.gan.evaluate import baseline_position, which_to_trust
from bookcover.gan.report import write_gan_report


def _ev(n: int, swd=(80.0, 20.0, 300.0), fid=(150.0, 120.0, 400.0)) -> dict:
    def swd_row(v):
        return {"64": v, "32": v, "16": v, "mean": v}

    ev = {
        "checkpoint": "last.pt", "epoch": 3, "n": n, "real_covers": 2 * n,
        "swd": {"generated": swd_row(swd[0]), "real_vs_real": swd_row(swd[1]), "noise": swd_row(swd[2])},
        "verdict": "v", "diversity": {"generated": 0.3, "real": 0.4},
        "memorisation": {"generated_median": 0.3, "real_median": 0.3, "threshold": 0.1, "fraction": 0.5,
                         "ratio": 0.8, "flagged": 0, "close": 0, "resolution": 32},
        "fid_kid": {"classifier": "best.pt", "dim": 512,
                    **{k: {"fid": v, "kid": 0.01, "kid_std": 0.01}
                       for k, v in zip(("generated", "real_vs_real", "noise"), fid, strict=True)}},
    }
    ev["trust"] = which_to_trust(ev)
    return ev


def test_baseline_position():
    assert baseline_position(20.0, 20.0, 300.0) == 0
    assert baseline_position(300.0, 20.0, 300.0) == 100
    assert baseline_position(5.0, 10.0, 8.0) is None


def test_few_samples_disagreeing_say_so_and_name_swd(tmp_path):
    ev = _ev(256)  # SWD 21 %, FID 11 %: agree; then make FID say "worse than halfway"
    assert "disagree" not in ev["trust"] and "Trust SWD" in ev["trust"]
    ev = _ev(256, fid=(350.0, 120.0, 400.0))  # FID 82 %
    assert "21 %" in ev["trust"] and "82 %" in ev["trust"] and "disagree" in ev["trust"]
    assert "Trust SWD" in ev["trust"] and "512-d" in ev["trust"] and "256 images" in ev["trust"]
    report = write_gan_report(tmp_path, ev).read_text()
    assert "**Which measure to trust:**" in report and "Trust SWD" in report


def test_enough_samples_read_both_and_no_classifier_means_swd():
    assert "read both" in _ev(6000)["trust"]
    ev = _ev(256)
    del ev["fid_kid"]
    assert "SWD is the measure" in which_to_trust(ev)


def test_curves_name_each_discriminator_output_distinctly(tmp_path, monkeypatch):
    """d_g_z1 is D(G(z)) before D's update, d_g_z2 after it (and before G's): two moments, two labels."""
    from bookcover.gan import report

    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, out: figures.append(fig))
    steps = [{"kind": "step", "step": s, "loss_d": 1.0, "loss_g": 2.0, "d_x": 0.7, "d_g_z1": 0.4, "d_g_z2": 0.3}
             for s in (1, 2)]
    report.plot_gan_curves(steps + [{"kind": "epoch", "steps": 2, "d_g_z1": 0.4, "d_g_z2": 0.3}], tmp_path / "c.png")
    labels = [t.get_text() for t in figures[0].axes[1].get_legend().get_texts()]
    assert report.D_FAKE_BEFORE in labels and report.D_FAKE_AFTER in labels and "epoch means" in labels
    assert "before D's update" in report.D_FAKE_BEFORE and "after D's update" in report.D_FAKE_AFTER
    assert len(set(labels)) == len(labels)


def test_nearest_figure_has_row_labels_and_distances(tmp_path, monkeypatch):
    import torch

    from bookcover.gan import report

    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, out: figures.append(fig))
    images = torch.rand(6, 3, 16, 16) * 2 - 1
    report.plot_nearest(images[:3], images[3:], torch.tensor([0.1, 0.2, 0.3]), tmp_path / "n.png")
    axes = figures[0].axes
    assert axes[0].get_ylabel() == "generated" and "nearest" in axes[3].get_ylabel()
    assert [ax.get_title() for ax in axes[3:]] == ["d = 0.100", "d = 0.200", "d = 0.300"]


def test_report_explains_the_d_of_g_of_z_pair(tmp_path):
    (tmp_path / "curves.png").write_bytes(b"png")
    report = write_gan_report(tmp_path, _ev(256)).read_text()
    assert "D(G(z)) a/b" in report and "before D's update" in report
