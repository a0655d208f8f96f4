"""Errors a user can cause and fix: the CLI prints them in one line and exits 2."""


class C2MError(Exception):
    """A user-facing error: says what was wrong, where, and what would be accepted."""
