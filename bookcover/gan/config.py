"""DCGAN run configuration and its presets: the study's schedule and a quick CPU one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace


@dataclass
class GanConfig:
    """Everything that defines a GAN run; saved to config.json and in every checkpoint."""

    preset: str = "paper"
    data: str | None = None  # None: the embedded synthetic covers
    synth_n: int = 5000
    score_column: str | None = None
    max_covers: int | None = None
    num_levels: int = 5
    top_levels: int = 3  # the study trains on the covers of the 3 most popular of 5 levels
    # The cache resizes to (H, W) ignoring aspect. 120 x 80 is exactly "short edge to 80" for the
    # 2:3 covers of Goodreads (200 x 300) and of the synthetic set (128 x 192); others are
    # stretched to 2:3 first.
    cache_height: int = 120
    cache_width: int = 80
    crop: int = 64
    nz: int = 100
    ngf: int = 64  # Table 1: 64 -> G widths 512-256-128-64-3
    ndf: int = 64  # Table 1: 64 -> D widths 64-128-256-512-1
    epochs: int = 200
    batch_size: int = 128
    lr: float = 5e-4  # the study's value (DCGAN's own is 2e-4)
    # The study names only the learning rate; 0.5 is DCGAN's beta1 (and the PyTorch DCGAN
    # example's, which its code follows). --beta1 0.9 gives torch's default.
    beta1: float = 0.5
    beta2: float = 0.999
    noise: str = "normal"  # the study's code; its text says uniform [0, 1)
    conditional: bool = False
    grid_samples: int = 64  # fixed-noise samples drawn into grids/epoch_XXX.png every epoch
    eval_samples: int = 1024  # generated images for the end-of-run evaluation
    collapse_steps: int = 100  # consecutive suspicious steps before a collapse warning
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto: bf16 autocast on CUDA, off on CPU
    compile: str = "auto"  # auto: torch.compile on CUDA, eager on CPU

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GanConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def num_classes(self) -> int:
        """Levels seen by a conditional GAN (0 for the study's unconditional one)."""
        return self.top_levels if self.conditional else 0


GAN_PRESETS: dict[str, GanConfig] = {
    # The study: top 3 of 5 levels, Adam 5e-4, batch 128, 200 epochs, 80 -> 64 px.
    "paper": GanConfig(preset="paper"),
    # Minutes on 2 CPU cores: 1,000 covers (600 after keeping the top 3 levels), batch 8,
    # 16 epochs = 1,200 steps, 256 evaluation samples. Same models, loss, optimiser, learning
    # rate and preprocessing as the study. A DCGAN needs steps, not images, to leave the noise
    # it starts from: batch 64 for 3 epochs (27 steps) gave grey noise, SWD 111 % of the way from
    # real covers to noise; batch 16 for 666 steps 68 %; batch 8 for 1,200 steps 41 %, with
    # cover-like backgrounds, a title band and badge-like blobs (batch 4 made dot artefacts).
    "quick": GanConfig(preset="quick", synth_n=1000, max_covers=1000, epochs=16, batch_size=8, eval_samples=256),
}

QUICK_HELP = (
    "quick: 1,000 covers (600 in the top 3 levels), batch 8, 16 epochs (1,200 steps), 256 evaluation samples (CPU-friendly; "
    "same models and optimiser). paper: the study's batch 128, 200 epochs."
)


def gan_preset(name: str, **overrides) -> GanConfig:
    """A preset with the given fields replaced (None values are ignored)."""
    if name not in GAN_PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(GAN_PRESETS)}")
    return replace(GAN_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
