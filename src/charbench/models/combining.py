"""Log-likelihood calls made at the same time on one model, scored as one call.

Inspect runs many samples at once, and a likelihood judge or choice asks for a few pairs per sample from a
worker thread. Scored one call at a time, each call is a forward pass of a few dozen tokens, where a 2-core CPU
does far less per token than in a batch. Here a caller leaves its pairs in a queue and then waits for the
model; whoever gets the model takes every waiting call with the same settings and scores them together
(flat combining: no worker thread and no gathering delay, since calls pile up exactly while the model is busy).
Together, contexts are taken in token order (consecutive ones share the longest prefixes) and contexts scored
once share padded batches.

Numbers equal those of separate calls to float rounding (``tests/test_logprobs.py``). A call whose pairs fail
(an empty continuation) fails alone: a failed combined run is repeated call by call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from charbench.models.logprobs import ContinuationScore

Pairs = list[tuple[str, str]]
ScoreFn = Callable[[Pairs, int, bool], list[ContinuationScore]]


@dataclass
class _Call:
    pairs: Pairs
    settings: tuple[int, bool]  # (batch_size, cache_context): only calls that agree are combined
    future: Future[list[ContinuationScore]] = field(default_factory=Future)


class CombinedScoring:
    """Score ``(context, continuation)`` pairs with ``score``, combining calls that wait for the model together.

    ``hold`` returns the context manager that gives a caller the model (the provider's compute turn and lock).
    """

    def __init__(self, score: ScoreFn, hold: Callable[[], AbstractContextManager[object]]) -> None:
        self._score = score
        self._hold = hold
        self._waiting: list[_Call] = []
        self._waiting_lock = threading.Lock()
        self.calls = 0
        self.runs = 0  # calls / runs is how many calls a run combined on average

    def __call__(self, pairs: Sequence[tuple[str, str]], batch_size: int = 8,
                 cache_context: bool = True) -> list[ContinuationScore]:
        call = _Call(list(pairs), (batch_size, cache_context))
        with self._waiting_lock:
            self._waiting.append(call)
        with self._hold():
            if not call.future.done():  # else a caller that held the model before us scored it
                self._run(call.settings)
        return call.future.result()

    def _run(self, settings: tuple[int, bool]) -> None:
        with self._waiting_lock:
            calls = [c for c in self._waiting if c.settings == settings]
            self._waiting = [c for c in self._waiting if c.settings != settings]
        self.calls += len(calls)
        self.runs += 1
        try:
            scores = self._score([p for c in calls for p in c.pairs], *settings)
        except Exception:
            if len(calls) == 1:
                raise
            for c in calls:  # find the call that failed; the others still get their scores
                self._run_alone(c)
            return
        except BaseException as exc:  # interrupted: no caller may wait for ever on a result that will not come
            for c in calls:
                c.future.set_exception(exc)
            raise
        start = 0
        for c in calls:
            c.future.set_result(scores[start : start + len(c.pairs)])
            start += len(c.pairs)

    def _run_alone(self, call: _Call) -> None:
        try:
            call.future.set_result(self._score(call.pairs, *call.settings))
        except Exception as exc:
            call.future.set_exception(exc)
