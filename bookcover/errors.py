"""User-facing errors: the CLI prints them as one line and exits non-zero, never a traceback."""


class BookcoverError(Exception):
    """A problem with the user's input or environment that has a one-line explanation."""


class CoverError(BookcoverError):
    """A cover image that cannot be decoded (corrupt, truncated, empty, not an image)."""


class DataError(BookcoverError):
    """A dataset, CSV or manifest that does not match the expected layout."""


class InvalidLabelsError(BookcoverError, ValueError):
    """Labels outside 0..K-1, or of a non-integer dtype."""


class CheckpointError(BookcoverError):
    """A checkpoint that is missing, unreadable or of the wrong kind."""


class TrainingDiverged(BookcoverError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
