"""bookcover-fast: does a book's cover predict its popularity? The study, rebuilt and made fast.

The package is laid out by feature, on shared layers that never import the features:

features      classifier/  the CORAL ResNet-34: model, training, evaluation, prediction, report
              gan/         the study's DCGAN: model, training, sampling, evaluation, search
              explain/     batched LIME for a classifier (checkpoint or ONNX artifact)
              export.py    ONNX export of a classifier and its parity check
              cli.py       the click CLI (bookcover-fast): parse, call the library, print
shared        data/        covers: Goodreads layout, synthetic covers, decode-once cache, batches,
                           the labelled covers a run's configuration implies
              coral/       the CORAL op: reference, Triton and C++ fast paths, dispatch
              checkpoint.py atomic save, weights_only load, kind check
              outputs.py   the --out policy and its ownership record (.bookcover-outputs.json)
              resume.py    start-or-resume rules of a training run, recorded data paths
              runlog.py    config.json and metrics.jsonl of a run directory
              jsonio.py    JSON with null for undefined numbers
              estimate.py  the run-time estimate line
              figures.py, filemodes.py   how figures are saved, temp files' modes
              devices.py   which device a command runs on
              errors.py    the one-line errors the CLI prints

explain, export and gan use the classifier only through ``bookcover.classifier``'s public names.
tests/test_layout.py checks these rules.
"""

__version__ = "0.1.0"
