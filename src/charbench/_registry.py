"""Inspect entry point: importing this registers every charbench task and the ``charbench/`` model provider."""

# ruff: noqa: F401
from charbench.models.provider import CharbenchModelAPI
from charbench.tasks import *  # noqa: F403
