"""Tests and resampling on estimated models. Their errors are `InferenceError`s: like a bad
specification, they reach the user as a message that says what to change, not a traceback."""


class InferenceError(ValueError):
    """A test that cannot be run on this model or data; the message says why and what to do."""
