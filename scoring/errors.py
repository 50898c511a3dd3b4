"""The one exception type for user mistakes.

A ``UserError`` carries a single sentence that names the fix. The CLI prints it and exits with
status 2 instead of showing a traceback; library callers can catch it like any ``ValueError``.
It lives in ``scoring`` (not ``curriculum``) so that the record and table code, which sit below
the training code, can raise it too.
"""


class UserError(ValueError):
    """A mistake in the user's input (a name, a path, a parameter), not a bug."""


class CorruptFileError(UserError):
    """A file of ours that is truncated or damaged (not a permission problem): a caller that can
    recompute the file may catch this and replace it."""
