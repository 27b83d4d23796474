"""The study's DCGAN: model, training, data, sampling, offline evaluation and popularity search.

model       Generator and Discriminator exactly as the study's Table 1 (plus a conditional variant)
train       the training loop: top-level covers -> random 64 px crops -> G and D with BCE -> grids
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

It looks through a trained classifier (FID/KID features, popularity search) only by
``bookcover.classifier``'s public ``load_classifier`` and ``embed_pixels``.
"""
