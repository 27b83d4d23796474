"""The study's DCGAN, measured: data, sampling, offline evaluation and popularity search.

config      GanConfig and the paper / quick presets
data        top-level covers from the decode-once cache (120 x 80 = short edge 80), crops in [-1, 1]
sampling    noise, generation, true-colour grids, loading G from a checkpoint
collapse    warnings on signs of GAN failure during training
swd         sliced Wasserstein distance on Laplacian-pyramid patches (ProGAN)
features    FID and KID on a CORAL classifier's penultimate features
neighbours  diversity and memorisation (nearest training cover)
evaluate    all of the above beside real-vs-real and noise baselines -> report.md
search      most-popular-cover search with a CORAL model
report      curves and report.md

The training loop itself lives in bookcover.train.gan, beside the classifier's.
"""
