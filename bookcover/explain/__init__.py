"""Batched, vectorised LIME for the CORAL-CNN, with lime-package parity and faithfulness checks.

Entry points: :func:`bookcover.explain.explainer.explain_image` (one cover),
:func:`bookcover.explain.run.explain_covers` (a CLI run), and
:func:`bookcover.explain.adapters.lime_classifier_fn` (a batched ``classifier_fn`` for users
of ``lime_image``; call ``explain_instance(..., batch_size=num_samples)`` so lime hands all
perturbations to the model in one call).
"""
