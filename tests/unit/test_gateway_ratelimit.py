"""The gateway's per-owner token buckets, on a clock the test moves."""

from lorag_gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_rate_holds():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("alice") == 0.5  # one request refills in 1/rate seconds
    clock.now += 0.5
    assert limiter.take("alice") == 0.0
    assert limiter.take("alice") > 0


def test_owners_have_buckets_of_their_own():
    limiter = RateLimiter(rate=1.0, burst=1, clock=Clock())
    assert limiter.take("alice") == 0.0
    assert limiter.take("alice") > 0
    assert limiter.take("bob") == 0.0


def test_a_refill_never_exceeds_the_burst():
    clock = Clock()
    limiter = RateLimiter(rate=10.0, burst=2, clock=clock)
    limiter.take("alice")
    clock.now += 3600
    assert [limiter.take("alice") > 0 for _ in range(3)] == [False, False, True]
