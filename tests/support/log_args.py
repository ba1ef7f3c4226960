"""``%``-arguments of awkward shapes, for the log handler and the log record processor."""

from __future__ import annotations

from collections.abc import Iterator, Mapping


class CountingArgs(Mapping[str, int]):
    """``%``-arguments with ``size`` generated keys (``k0``, ``k1``, ...): counts the keys
    its iteration hands out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.listed = 0

    def __getitem__(self, key: str) -> int:
        if not key.startswith("k") or not key[1:].isdigit() or int(key[1:]) >= self.size:
            raise KeyError(key)
        return int(key[1:])

    def __iter__(self) -> Iterator[str]:
        for number in range(self.size):
            self.listed += 1
            yield f"k{number}"

    def __len__(self) -> int:
        return self.size


class LookupOnly(Mapping[str, str]):
    """A mapping that can be looked up but not listed (a lazy proxy, a remote store):
    ``logging`` formats ``%(user)s`` with it all the same."""

    def __getitem__(self, key: str) -> str:
        return {"user": "bob"}[key]

    def __iter__(self) -> Iterator[str]:
        raise TypeError("listing not supported")

    def __len__(self) -> int:
        return 1
