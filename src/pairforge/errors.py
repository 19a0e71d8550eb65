"""Errors whose message is meant for the user.

A :class:`UserError` is printed by the CLI as one line (no traceback) and, raised inside a Ray worker,
reaches the driver as the same type with the same message (each subclass pickles from its message
alone). Library modules raise the most specific subclass; they never catch and reword each other's.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem the user fixes (a config value, a missing file or model, a refused resume)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __reduce__(self):  # pickle from the message alone, whatever the subclass's own __init__ takes
        return (_rebuild, (type(self), self.message))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[UserError], message: str) -> UserError:
    err = cls.__new__(cls)
    UserError.__init__(err, message)
    return err


class ModelLoadError(UserError, RuntimeError):
    """A model or weight file a stage needs could not be loaded; the run stops at setup, naming it.
    (Also a RuntimeError, as the loaders' errors were before they had a type of their own.)"""


class RayConnectError(UserError):
    """``--ray-address`` (or ``ray.address``) names a Ray cluster this driver could not join."""
