"""The gateway's token cache: a live token's owner for a few seconds, then looked up again."""

import time

from lorag_gateway.tokencache import TokenCache


def test_an_owner_is_remembered_for_the_ttl_only():
    cache = TokenCache(0.2)
    assert cache.owner("d1") is None
    cache.remember("d1", "alice")
    assert cache.owner("d1") == "alice" and cache.owner("d2") is None
    time.sleep(0.25)
    assert cache.owner("d1") is None  # past the TTL: the database decides again


def test_zero_turns_it_off():
    cache = TokenCache(0)
    cache.remember("d1", "alice")
    assert cache.owner("d1") is None
