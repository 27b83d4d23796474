"""``bookcover-fast serve``: the ONNX artifact behind HTTP, with dynamic batching and a page.

One module per job: :mod:`.model` (the verified artifact and upload decoding, through the
torch-free consumer), :mod:`.batcher` (dynamic batching with a bounded queue), :mod:`.v2`
(the Open Inference Protocol), :mod:`.routes` (the convenience endpoints and the page),
:mod:`.guard` (body limit, metrics and one-line errors around every request),
:mod:`.metrics`, :mod:`.explain` (LIME overlays with --checkpoint), :mod:`.app` (wiring),
:mod:`.server` (uvicorn, signals) and :mod:`.triton_repo` (the Triton Inference Server handoff).
"""
