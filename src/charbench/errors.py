"""Errors that name the problem and the fix."""


class CharbenchError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class ConstitutionError(CharbenchError, ValueError):
    pass


class ModelPathError(CharbenchError, FileNotFoundError):
    pass


class TaskParameterError(CharbenchError, ValueError):
    pass
