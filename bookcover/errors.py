"""User-facing errors: the CLI prints them as one line and exits non-zero, never a traceback.

Each class carries the exit code the CLI uses for it (documented in ``bookcover-fast --help``
and the README): 2 when the command cannot start from what it was given (bad usage, data,
checkpoint or artifact), 1 when it ran and failed, 130 when it was interrupted (Ctrl-C).
"""

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class BookcoverError(Exception):
    """A problem with the user's input or environment that has a one-line explanation."""

    exit_code = EXIT_FAILED


class UsageError(BookcoverError):
    """Options that do not fit together, or nothing to work on."""

    exit_code = EXIT_BAD_INPUT


class CoverError(BookcoverError):
    """A cover image that cannot be decoded (corrupt, truncated, empty, too large, not an image)."""


class DataError(BookcoverError):
    """A dataset, CSV or manifest that does not match the expected layout."""

    exit_code = EXIT_BAD_INPUT


class InvalidLabelsError(BookcoverError, ValueError):
    """Labels outside 0..K-1, or of a non-integer dtype."""


class CheckpointError(BookcoverError):
    """A checkpoint that is missing, unreadable or of the wrong kind."""

    exit_code = EXIT_BAD_INPUT


class ArtifactError(CheckpointError):
    """An ONNX artifact that is missing, corrupt, unverified or not the pinned one."""


class TrainingDiverged(BookcoverError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(BookcoverError):
    """Ctrl-C: the message says what was kept and how to continue."""

    exit_code = EXIT_INTERRUPTED
