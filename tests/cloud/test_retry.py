import itertools
import random

from hedge_agent.cloud.retry import Backoff


def test_backoff_grows_exponentially_up_to_the_cap_with_jitter_below_each_step():
    policy = Backoff(initial_s=0.1, factor=2.0, max_s=1.0, jitter=0.5)
    delays = list(itertools.islice(policy.delays(random.Random(1)), 8))
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for d, step in zip(delays, steps, strict=True):
        assert step * 0.5 <= d <= step


def test_backoff_without_jitter_is_exact():
    delays = list(itertools.islice(Backoff(initial_s=1, factor=3, max_s=10, jitter=0).delays(), 4))
    assert delays == [1, 3, 9, 10]
