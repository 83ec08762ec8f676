"""One exception type for every user-facing error: the CLI prints its message on one line and exits 2."""


class TextbenchError(Exception):
    """A clear, user-facing error (bad input, missing data, unknown name, corrupt file, NaN loss)."""
