"""``Lru``: bounded, the least recently stored or used entry goes first."""

from __future__ import annotations

from otel_sentry_bridge.lru import Lru


def test_the_oldest_entry_goes_past_the_size() -> None:
    lru: Lru[str, int] = Lru(2)
    for key, value in (("a", 1), ("b", 2), ("c", 3)):
        lru.put(key, value)
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (None, 2, 3, 2)


def test_use_makes_an_entry_the_newest_and_get_does_not() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # still the oldest
    lru.put("c", 3)
    assert lru.get("a") is None
    assert lru.use("b") == 2  # now the newest
    lru.put("d", 4)
    assert (lru.get("b"), lru.get("c")) == (2, None)


def test_pop_takes_an_entry_out() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    assert (lru.pop("a"), lru.pop("a"), len(lru)) == (1, None, 0)


def test_keys_come_oldest_first() -> None:
    lru: Lru[str, int] = Lru(3)
    for key in "abc":
        lru.put(key, 0)
    lru.use("a")
    assert list(lru) == ["b", "c", "a"]


def test_membership_neither_uses_nor_walks_the_entries() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert ("a" in lru, "z" in lru) == (True, False)
    lru.put("c", 3)  # "a" is still the oldest: it goes
    assert ("a" in lru, list(lru)) == (False, ["b", "c"])
