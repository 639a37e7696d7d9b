"""Errors that name the problem and the fix."""


class CharbenchError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class ConstitutionError(CharbenchError, ValueError):
    pass


class ModelPathError(CharbenchError, FileNotFoundError):
    pass


class TaskParameterError(CharbenchError, ValueError):
    pass


class CacheIntegrityError(CharbenchError):
    """A cached artefact no longer matches the size/hash recorded when it was written."""


class UnsafeWeightsError(CharbenchError):
    """Loading these weights would run code (pickle, trust_remote_code) and the user has not opted in."""
