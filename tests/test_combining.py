"""Scoring calls that wait for the model are combined into one run (the provider's numbers: test_logprobs.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from helpers import wait_until

from charbench.errors import TaskParameterError
from charbench.models.combining import CombinedScoring
from charbench.models.logprobs import ContinuationScore


def _length_scores(pairs, batch_size, cache_context):
    """A stand-in scorer: the continuation's length, negated; an empty one is refused as the real one does."""
    if any(not cont for _ctx, cont in pairs):
        raise TaskParameterError("continuation '' is empty")
    return [ContinuationScore(-float(len(cont)), len(cont), False) for _ctx, cont in pairs]


def _calls_while_held(scoring, model_lock, requests):
    """Submit every request while the model is held, release it, and return each call's outcome."""
    with ThreadPoolExecutor(len(requests)) as pool:
        model_lock.acquire()
        futures = [pool.submit(scoring, pairs, *settings) for pairs, settings in requests]
        wait_until(lambda: len(scoring._waiting) == len(requests))
        model_lock.release()
        outcomes = []
        for f in futures:
            try:
                outcomes.append(f.result(timeout=30))
            except TaskParameterError as exc:
                outcomes.append(exc)
    return outcomes


def test_calls_waiting_for_the_model_are_scored_in_one_run():
    lock = threading.Lock()
    scoring = CombinedScoring(_length_scores, lambda: lock)
    requests = [([("ctx", "a" * n), ("ctx", "b" * (n + 1))], (8, True)) for n in range(1, 6)]
    outcomes = _calls_while_held(scoring, lock, requests)
    assert [[s.logprob for s in o] for o in outcomes] == [[-n, -(n + 1)] for n in range(1, 6)]
    assert scoring.calls == 5 and scoring.runs == 1


def test_calls_with_other_settings_are_not_mixed_in():
    lock = threading.Lock()
    seen = []

    def recording(pairs, batch_size, cache_context):
        seen.append((len(pairs), batch_size, cache_context))
        return _length_scores(pairs, batch_size, cache_context)

    scoring = CombinedScoring(recording, lambda: lock)
    requests = [([("c", "x")], (8, True)), ([("c", "yy")], (8, False)), ([("c", "zzz")], (8, True))]
    outcomes = _calls_while_held(scoring, lock, requests)
    assert [o[0].n_tokens for o in outcomes] == [1, 2, 3]
    assert sorted(seen) == [(1, 8, False), (2, 8, True)]


def test_a_failing_call_fails_alone():
    lock = threading.Lock()
    scoring = CombinedScoring(_length_scores, lambda: lock)
    requests = [([("c", "ab")], (8, True)), ([("c", "")], (8, True)), ([("c", "abc")], (8, True))]
    outcomes = _calls_while_held(scoring, lock, requests)
    assert outcomes[0][0].n_tokens == 2 and outcomes[2][0].n_tokens == 3
    assert isinstance(outcomes[1], TaskParameterError) and "empty" in str(outcomes[1])
