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


def test_an_expiring_token_is_kept_no_longer_than_its_expiry():
    from datetime import UTC, datetime, timedelta

    from lorag_core.db.tokens import Grant

    cache = TokenCache(60)
    soon = Grant(
        "tok-1", "alice", read_only=True, expires_at=datetime.now(UTC) + timedelta(0.2 / 86400)
    )
    cache.remember("d1", soon)
    assert cache.grant("d1") == soon and cache.owner("d1") == "alice"
    time.sleep(0.25)
    assert cache.grant("d1") is None  # expired: the database says so, with a clear 401


def test_durations_of_tokens():
    from datetime import timedelta

    import pytest

    from lorag_core.db.tokens import parse_duration

    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("90m") == timedelta(minutes=90)
    for bad in ("30", "0d", "-1d", "1y", "d", ""):
        with pytest.raises(ValueError, match="30d"):
            parse_duration(bad)
