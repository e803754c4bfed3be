"""Errors shared across the host tool."""


class CommandError(Exception):
    """A failure the user can fix: the CLI prints it as one line (problem and fix) and exits with status 1."""
