"""The one error the model commands raise for an expected failure: what failed and what to do about it."""

from __future__ import annotations


class ModelInstallError(Exception):
    """A fetch, import, export or verification that could not be done; ``str()`` is the message for the owner."""
