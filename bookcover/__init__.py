"""bookcover-fast: does a book's cover predict its popularity? The study, rebuilt and made fast."""

__version__ = "0.1.0"
