"""One exception type for every user-facing error: the CLI prints its message on one line and exits 2."""


class TextbenchError(Exception):
    """A clear, user-facing error (bad input, missing data, unknown name, corrupt file, NaN loss)."""


def one_line(text: object) -> str:
    """``text`` (an exception, a message) on one line: runs of whitespace, newlines included, become one space."""
    return " ".join(str(text).split())
