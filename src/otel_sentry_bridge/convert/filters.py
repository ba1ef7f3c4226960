"""Which exceptions never become Sentry events (Http404 and friends, user-configured types).

Types are named by their qualified name. A name matches the event's type itself or, when both
classes are already imported in this process, any subclass of it. Nothing is imported here:
looking up ``sys.modules`` only keeps this cheap and free of import side effects.

An event names a class of ``__main__`` (the script being run) without its module, as Python's
traceback does: ``MainError``, not ``__main__.MainError``. Such a name, when it is not a
builtin, is also tried as ``__main__.<name>``, so that ``__main__.MainError`` ignores it.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterable

__all__ = ["IgnoredTypes"]


def _resolve(qualified: str) -> type | None:
    parts = qualified.split(".")
    if len(parts) == 1:
        parts = ["builtins", *parts]
    # The module is the longest imported prefix and the rest is the class's qualname: a nested
    # class "pkg.mod.Outer.Inner" lives in module "pkg.mod", not "pkg.mod.Outer".
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        target: object = module
        for part in parts[cut:]:
            target = getattr(target, part, None)
            if target is None:
                return None
        return target if isinstance(target, type) else None
    return None


class IgnoredTypes:
    def __init__(self, names: Iterable[str]) -> None:
        self._names = frozenset(n.strip() for n in names if n.strip())
        self._short = frozenset(n for n in self._names if "." not in n)
        # Answers per type name (the request thread and the worker ask for every error). A
        # class's bases never change, so a cached answer stays right.
        self._answers: dict[str, bool] = {}

    def matches(self, qualified: str) -> bool:
        """True when the exception type named ``qualified`` is ignored."""
        answer = self._answers.get(qualified)
        if answer is None:
            if len(self._answers) > 1024:
                self._answers.clear()
            answer = self._answers[qualified] = self._matches(qualified)
        return answer

    def _matches(self, qualified: str) -> bool:
        if not self._names or not qualified:
            return False
        if self._matches_name(qualified):
            return True
        # Python prints a class of __main__ without its module, a nested one as "Outer.Inner":
        # a name whose first part is neither a builtin nor an imported module is __main__'s.
        head = qualified.partition(".")[0]
        if hasattr(builtins, head) or head in sys.modules:
            return False
        return self._matches_name(f"__main__.{qualified}")

    def _matches_name(self, qualified: str) -> bool:
        if qualified in self._names or qualified.rpartition(".")[2] in self._short:
            return True
        exc_type = _resolve(qualified)
        if exc_type is None:
            return False
        for name in self._names:
            base = _resolve(name if "." in name else f"builtins.{name}")
            if base is not None and issubclass(exc_type, base):
                return True
        return False
