"""``Lru``: a mapping of fixed size that forgets the least recently stored or used entry.

Not locked: each owner (the capture store, the conversion's memos, the source reader) holds
its own lock around it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["Lru"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class Lru(Generic[_K, _V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[_K, _V] = OrderedDict()

    def put(self, key: _K, value: _V) -> None:
        """Store ``value`` as the newest entry; the oldest go past ``size``."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def get(self, key: _K) -> _V | None:
        """The value, without making it newer."""
        return self._items.get(key)

    def use(self, key: _K) -> _V | None:
        """The value, made the newest entry (a memo's hit)."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def pop(self, key: _K) -> _V | None:
        return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[_K]:
        """The keys, the oldest first."""
        return iter(self._items)
