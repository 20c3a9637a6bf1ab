"""Helper processes: a process forked when a command starts, which imports a slow library at
once (MLflow and its store: seconds of a core; matplotlib: half a second) while the command
composes and computes on the other core, then runs the calls it is sent, in order. A call is a
module-level function and its arguments: `submit` returns at once, its reply's `get` waits for
the result (or raises the call's exception). A command that needs none of its calls closes it.
The command's helpers are the state this module keeps: `_LIVE` (those it talks to) and
`_PRELOADED` (started at the command's start, by role, until taken)."""

from __future__ import annotations

import multiprocessing
import pickle
import signal
from collections.abc import Callable
from typing import Any

_LIVE: list["Helper"] = []
_PRELOADED: dict[str, "Helper"] = {}


class Helper:
    """A forked process that runs `load()` at once, then the calls it is sent. `role` says what it
    does (`logging to MLflow`); `error` wraps what goes wrong on its side (it died; an exception
    that does not pickle)."""

    def __init__(self, role: str, load: Callable[[], None], error: type[Exception]) -> None:
        context = multiprocessing.get_context("fork")  # the child has eqexp loaded already
        self._conn, child = context.Pipe()
        self._error, self.role, self._pending = error, role, []
        self._process = context.Process(target=_serve, args=(child, self._conn, load, error), name=f"eqexp {role}", daemon=True)
        # Ctrl-C held until the child ignores it: here it then raises after the fork, not in the child
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        child.close()
        _LIVE.append(self)

    def submit(self, function: Callable[..., Any], *args: Any) -> "Reply":
        reply = Reply(self)
        try:
            self._conn.send((function, args))
            self._pending.append(reply)  # answered in the order sent
        except OSError as err:  # the process is gone: no answer will come
            reply._set(True, self._gone(err))
        return reply

    def _receive_until(self, reply: "Reply") -> None:
        while not reply.done:
            first = self._pending.pop(0)
            try:
                first._set(*self._conn.recv())
            except (EOFError, OSError) as err:
                first._set(True, self._gone(err))

    def _gone(self, err: Exception) -> Exception:
        self._process.join(timeout=1)
        return self._error(f"the process {self.role} ended (exit code {self._process.exitcode}) before it answered ({type(err).__name__})")

    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self) -> None:
        """End the process once it has answered what it was sent."""
        self._conn.close()
        self._process.join(timeout=30)
        if self._process.is_alive():  # someone else holds the pipe: it would never see its end
            self._process.kill()
        if self in _LIVE:
            _LIVE.remove(self)

    def kill(self) -> None:
        """End the process now, whatever it was doing."""
        self._process.kill()
        self.close()


class Reply:
    """The result of one call sent to a `Helper`."""

    def __init__(self, helper: Helper):
        self._helper, self.done, self._failed, self._value = helper, False, False, None

    def _set(self, failed: bool, value: Any) -> None:
        self.done, self._failed, self._value = True, failed, value

    def get(self) -> Any:
        self._helper._receive_until(self)
        if self._failed:
            raise self._value
        return self._value


def on_command_line(overrides: list[str], settings: set[str]) -> bool:
    """Does the command line hold one of `settings` (Hydra's `+`/`++` prefixes aside)? A command
    decides with it, before Hydra composes, whether to start a helper at all."""
    return bool(settings & {o.lstrip("+") for o in overrides})


def preload(role: str, load: Callable[[], None], error: type[Exception]) -> None:
    """Start the helper for `role` now; the first `take(role, …)` gets it."""
    if role not in _PRELOADED:
        _PRELOADED[role] = Helper(role, load, error)


def take(role: str, load: Callable[[], None], error: type[Exception]) -> Helper:
    """The helper preloaded for `role`, or a new one."""
    return _PRELOADED.pop(role, None) or Helper(role, load, error)


def take_preloaded(role: str) -> Helper | None:
    return _PRELOADED.pop(role, None)


def discard(role: str) -> None:
    """The command needs no helper for `role`: end the preloaded one."""
    helper = _PRELOADED.pop(role, None)
    if helper is not None:
        helper.kill()


def forget_inherited() -> None:
    """In a process forked from one that talks to helpers: close this copy of their pipes, so
    that each helper still ends when its owner closes its pipe."""
    for helper in _LIVE:
        helper._conn.close()
    _LIVE.clear()
    _PRELOADED.clear()


def _serve(conn, parent_end, load: Callable[[], None], error: type[Exception]) -> None:
    """A helper: load, then answer calls until the pipe closes. Ctrl-C is the command's to
    handle (it then closes this process); a command gone ends it quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the fork's caller
    parent_end.close()  # inherited from the fork: only the command may hold it, or its death is never seen
    load()
    while True:
        try:
            function, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = (False, function(*args))
        except Exception as err:
            answer = (True, err)
        try:
            conn.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError):  # an exception that does not pickle
            conn.send((True, error(f"{type(answer[1]).__name__}: {answer[1]}")))
        except OSError:
            return
