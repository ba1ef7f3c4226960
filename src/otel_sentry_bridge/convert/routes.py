"""Django routes (``http.route``, ``ResolverMatch.route``) -> transaction names. Pure.

A ``path()`` route's converters become ``{name}`` (``orders/<int:id>/`` -> ``/orders/{id}/``),
as Sentry's Django integration names them. A ``re_path()`` route is a regular expression
(Django REST framework's routers, Wagtail, the admin's app index) and becomes what Sentry's
Django integration shows for it: named groups ``{name}``, other capturing groups ``{var}``,
anchors dropped, escaped characters unescaped::

    ^api/orders/(?P<pk>[^/.]+)\\.(?P<format>[a-z0-9]+)/?$  ->  /api/orders/{pk}.{format}/
    ((?:[\\w\\-]+/)*)$                                     ->  /{var}

Unlike a chain of regular expression substitutions, the route is read once, left to right,
with its groups matched by nesting (``(?P<date>(?P<y>\\d+)-(?P<m>\\d+))`` is ``{date}``):
linear time, and no input makes it raise.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["route_name"]

# A route with none of these is a path() route (or a plain prefix): its text is the name.
_REGEX_MARKERS = frozenset("^$()[]\\|?")
_VAR = "{var}"
_CLASS_ESCAPES = frozenset("dDwWsS")
_ANCHOR_ESCAPES = frozenset("AZzbBG")
_CONTROL_ESCAPES = frozenset("ntrfva")
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_FLAGS = frozenset("aiLmsux-")
# A path() converter, ``<int:order_id>`` or ``<slug>``; not a regex's ``(?P<name>``.
_CONVERTER = re.compile(r"(?<!\?P)<(?:[A-Za-z_]\w{0,99}:)?([A-Za-z_]\w{0,99})>")


def route_name(route: str) -> str:
    """The transaction name of a Django route: ``/`` and the route, its regular expression
    syntax (if any) turned into ``{name}`` placeholders. Never raises."""
    try:
        text = str(route)
        if "<" in text:
            text = _CONVERTER.sub(r"{\1}", text)
        if _REGEX_MARKERS.isdisjoint(text):
            return "/" + text.lstrip("^/")
        name = _simplify(text)
        while "//" in name:
            name = name.replace("//", "/")
        return "/" + name.lstrip("/")
    except Exception:
        try:
            return "/" + str(route).lstrip("^/")
        except Exception:
            return "/"


def _simplify(text: str) -> str:
    out: list[str] = []
    inline_depth = 0  # open groups whose content is shown: (?:...), (?>...), (?i:...)
    previous_var = False  # the last piece came from an unnamed pattern (``\d+``, ``[a-z]*``)
    n = len(text)
    i = 0
    while i < n:
        char = text[i]
        var_atom = False
        if char == "\\":
            piece, i = _escape(text, i)
            if piece is _VAR:
                var_atom = True
            elif piece:
                out.append(piece)
        elif char == "(":
            piece, i, inline = _group(text, i)
            if inline:
                inline_depth += 1
            else:
                if piece:
                    out.append(piece)
                i = _after_quantifier(text, i)
        elif char == ")":
            i = _after_quantifier(text, i + 1)
            if inline_depth:
                inline_depth -= 1
        elif char == "[":
            i = _class_end(text, i)
            var_atom = True
        elif char in "^$":
            i += 1
        elif char in "*+?":
            i = _after_quantifier(text, i)  # after a literal: the literal is shown once
        elif char == "{" and _quantifier_end(text, i) is not None:
            i = _after_quantifier(text, i)
        elif char == "." and i + 1 < n and text[i + 1] in "*+{":
            i += 1
            var_atom = True
        else:
            out.append(char)
            i += 1
        if var_atom:
            i = _after_quantifier(text, i)
            if not previous_var:
                out.append(_VAR)
        previous_var = var_atom
    return "".join(out)


def _escape(text: str, i: int) -> tuple[str, int]:
    """The piece an escape at ``text[i]`` stands for (``_VAR`` for a character class, "" for
    an anchor or a control character) and the index after it."""
    if i + 1 >= len(text):
        return "", i + 1
    char = text[i + 1]
    if char in _CLASS_ESCAPES:
        return _VAR, i + 2
    if char in _ANCHOR_ESCAPES or char in _CONTROL_ESCAPES:
        return "", i + 2
    if char.isdigit():  # a back reference (or an octal escape): whatever a group matched
        j = i + 1
        while j < len(text) and j < i + 4 and text[j].isdigit():
            j += 1
        return _VAR, j
    if char in _HEX_ESCAPES:
        width = _HEX_ESCAPES[char]
        digits = text[i + 2 : i + 2 + width]
        try:
            decoded = chr(int(digits, 16)) if len(digits) == width else ""
        except ValueError:
            decoded = ""
        return (decoded if decoded.isprintable() else ""), i + 2 + len(digits)
    if char == "N" and text.startswith("{", i + 2):
        end = text.find("}", i + 3)
        if end == -1:
            return "", len(text)
        try:
            decoded = unicodedata.lookup(text[i + 3 : end])
        except KeyError:
            decoded = ""
        return (decoded if decoded.isprintable() else ""), end + 1
    return char, i + 2


def _group(text: str, i: int) -> tuple[str, int, bool]:
    """A group opening at ``text[i]``: ``(piece, next index, inline)``. An inline group's
    content is read on (the index is past its opening); any other group is skipped whole and
    stands for ``piece``: ``{name}``, ``{var}``, or "" (lookarounds, comments, flags)."""
    n = len(text)
    if not text.startswith("?", i + 1):
        return _VAR, _group_end(text, i), False  # a capturing group
    kind = text[i + 2 : i + 4]
    if kind[:1] == ":" or kind[:1] == ">":
        return "", i + 3, True
    if kind in ("P<", "P=") or (kind[:1] == "<" and kind[1:] not in ("=", "!")):
        start = i + (4 if kind[:1] == "P" else 3)
        j = start
        while j < n and (text[j].isalnum() or text[j] == "_"):
            j += 1
        name = text[start:j]
        return ("{" + name + "}" if name else _VAR), _group_end(text, i), False
    if kind[:1] == "#":  # a comment ends at the first ")"
        end = text.find(")", i)
        return "", (n if end == -1 else end + 1), False
    if kind[:1] in ("=", "!") or kind in ("<=", "<!"):
        return "", _group_end(text, i), False  # a lookaround matches no text
    j = i + 2
    while j < n and text[j] in _FLAGS:
        j += 1
    if j > i + 2 and j < n and text[j] == ")":
        return "", j + 1, False  # (?i): flags for the whole pattern
    if j > i + 2 and j < n and text[j] == ":":
        return "", j + 1, True  # (?i:...): flags for the group's content
    return _VAR, _group_end(text, i), False  # (?(1)yes|no) and anything unknown


def _group_end(text: str, i: int) -> int:
    """The index after the ``)`` that closes the group opening at ``text[i]``."""
    depth = 0
    n = len(text)
    j = i
    while j < n:
        char = text[j]
        if char == "\\":
            j += 2
            continue
        if char == "[":
            j = _class_end(text, j)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return n


def _class_end(text: str, i: int) -> int:
    """The index after the ``]`` that closes the character class opening at ``text[i]``."""
    n = len(text)
    j = i + 1
    if j < n and text[j] == "^":
        j += 1
    if j < n and text[j] == "]":  # a ] first in the class is a literal
        j += 1
    while j < n:
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "]":
            return j + 1
        j += 1
    return n


def _quantifier_end(text: str, i: int) -> int | None:
    """The index after ``{m}``, ``{m,}``, ``{,n}`` or ``{m,n}`` at ``text[i]``, else None (a
    literal brace)."""
    j = i + 1
    n = len(text)
    while j < n and text[j].isdigit():
        j += 1
    if j < n and text[j] == ",":
        j += 1
        while j < n and text[j].isdigit():
            j += 1
    if j < n and text[j] == "}" and j > i + 1:
        return j + 1
    return None


def _after_quantifier(text: str, i: int) -> int:
    """The index past a quantifier at ``text[i]`` (with its lazy ``?`` or possessive ``+``),
    or ``i`` when there is none."""
    if i >= len(text):
        return i
    if text[i] in "*+?":
        end = i + 1
    elif text[i] == "{":
        found = _quantifier_end(text, i)
        if found is None:
            return i
        end = found
    else:
        return i
    if end < len(text) and text[end] in "?+":
        end += 1
    return end
