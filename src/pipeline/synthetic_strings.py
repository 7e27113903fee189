"""Distinct strings that match a regular expression, made in bulk from row numbers.

The synthetic generator needs ids such as `^F\\d{5}$` for a million rows in a
second, the same for the same seed, and all distinct when the contract says
`unique`. Hypothesis (which pandera's own `schema.example()` uses) draws them
one at a time and cannot be seeded, so this module reads the pattern with
Python's own regex parser and numbers the strings it matches: row i gets the
i-th string of one fixed shape (a repeat count per repeat, one alternative per
branch), grown until the shape holds enough strings. Lookarounds and
back-references are refused with a clear message.
"""

from __future__ import annotations

import string
from itertools import count

import numpy as np

try:  # Python 3.11+
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants
    import sre_parse

# Readable characters only: no whitespace, quotes or separators a CSV reader could trip on.
PRINTABLE = string.ascii_letters + string.digits + "-_.:+@"
CATEGORIES = {
    sre_constants.CATEGORY_DIGIT: string.digits,
    sre_constants.CATEGORY_NOT_DIGIT: string.ascii_letters + "-_",
    sre_constants.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    sre_constants.CATEGORY_NOT_WORD: "-.:+@",
    sre_constants.CATEGORY_SPACE: " ",
    sre_constants.CATEGORY_NOT_SPACE: PRINTABLE,
}
GROWTH = 64  # an open-ended repeat (`+`, `*`, `{2,}`) grows at most this far past its minimum
# Values pandas reads back as missing: a generated id must never be one of them.
NA_STRINGS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA"}
    | {"NULL", "NaN", "None", "n/a", "nan", "null"}
)
_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None))


class PatternError(ValueError):
    """The pattern uses something this module cannot number (lookarounds, back-references)."""


def strings(pattern: str, rows: np.ndarray, needed: int) -> np.ndarray:
    """The strings numbered `rows` (distinct rows give distinct strings) of a shape holding `needed` strings."""
    shape = shape_for(pattern, needed)
    capacity = _capacity(shape)
    if capacity < needed:
        raise PatternError(f"matches at most {capacity} distinct strings, fewer than the {needed} needed")
    return render(shape, rows)


def shape_for(pattern: str, needed: int) -> list[str]:
    """One character set per position, for the smallest shape that holds `needed` distinct strings."""
    try:
        tree = _compile(sre_parse.parse(pattern), count())
    except PatternError:
        raise
    except Exception as error:  # re's own parse errors
        raise PatternError(f"is not a regular expression Python can read: {error}") from None
    choices: dict[int, int] = {}
    _initial(tree, choices)
    shape = best = _expand(tree, choices)
    while _capacity(shape) < max(needed, 1) or not shape:
        if not _grow(tree, choices):
            break
        shape = _expand(tree, choices)
        if _capacity(shape) > _capacity(best) or not best:
            best = shape
    return shape if _capacity(shape) >= max(needed, 1) and shape else best  # the shortest of the widest shapes


def render(shape: list[str], rows: np.ndarray) -> np.ndarray:
    """Row numbers to strings, right-most position fastest, as one fixed-width numpy string array."""
    rows = np.asarray(rows, dtype=np.int64).copy()
    codes = np.empty((len(rows), max(len(shape), 1)), dtype=np.uint32)
    for position in range(len(shape) - 1, -1, -1):
        table = np.frombuffer(shape[position].encode("utf-32-le"), dtype=np.uint32)
        codes[:, position] = table[rows % len(table)]
        rows //= len(table)
    if not shape:
        return np.full(len(rows), "", dtype="<U1")
    return codes.view(f"<U{len(shape)}").ravel()


def _capacity(shape: list[str]) -> int:
    total = 1
    for chars in shape:
        total *= len(chars)
        if total > 2**62:
            return 2**62  # more than any table will ever need, and still an int64
    return total


def _compile(parsed, ids) -> tuple:
    """sre's parse tree as ("seq", nodes), ("chars", set), ("repeat", id, lo, hi, node), ("branch", id, nodes)."""
    nodes = []
    for op, arg in parsed:
        if op is sre_constants.LITERAL:
            nodes.append(("chars", chr(arg)))
        elif op is sre_constants.NOT_LITERAL:
            nodes.append(("chars", PRINTABLE.replace(chr(arg), "")))
        elif op is sre_constants.ANY:
            nodes.append(("chars", string.ascii_lowercase + string.digits))
        elif op is sre_constants.IN:
            nodes.append(("chars", _char_set(arg)))
        elif op is sre_constants.CATEGORY:
            nodes.append(("chars", CATEGORIES.get(arg, PRINTABLE)))
        elif op in (
            sre_constants.MAX_REPEAT,
            sre_constants.MIN_REPEAT,
            getattr(sre_constants, "POSSESSIVE_REPEAT", None),
        ):
            low, high, sub = arg
            high = low + GROWTH if high is sre_constants.MAXREPEAT else min(high, low + GROWTH)
            nodes.append(("repeat", next(ids), low, high, _compile(sub, ids)))
        elif op is sre_constants.SUBPATTERN:
            nodes.append(_compile(arg[-1], ids))
        elif op is getattr(sre_constants, "ATOMIC_GROUP", None):
            nodes.append(_compile(arg, ids))
        elif op is sre_constants.BRANCH:
            nodes.append(("branch", next(ids), [_compile(alternative, ids) for alternative in arg[1]]))
        elif op is sre_constants.AT:
            continue  # anchors: every generated string is matched whole
        else:
            raise PatternError(f"uses {str(op).lower()}, which the synthetic generator cannot produce")
    return ("seq", nodes)


def _char_set(items) -> str:
    chars: list[str] = []
    negate = False
    for op, arg in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            chars.append(chr(arg))
        elif op is sre_constants.RANGE:
            chars.extend(chr(c) for c in range(arg[0], min(arg[1], arg[0] + 1000) + 1))
        elif op is sre_constants.CATEGORY:
            chars.extend(CATEGORIES.get(arg, PRINTABLE))
        else:
            raise PatternError(f"uses {str(op).lower()} in a character set, which the synthetic generator cannot read")
    if negate:
        chars = [c for c in PRINTABLE if c not in set(chars)]
    unique = "".join(dict.fromkeys(chars))
    if not unique:
        raise PatternError("has a character set that no readable character matches")
    return unique


def _initial(node: tuple, choices: dict[int, int]) -> None:
    """Repeats start at their minimum (at least once, when allowed); branches take their widest alternative."""
    kind = node[0]
    if kind == "seq":
        for child in node[1]:
            _initial(child, choices)
    elif kind == "repeat":
        _, key, low, high, child = node
        choices[key] = low if low > 0 or high == 0 else 1
        _initial(child, choices)
    elif kind == "branch":
        _, key, alternatives = node
        for alternative in alternatives:
            _initial(alternative, choices)
        widths = [_capacity(_expand(alternative, choices)) for alternative in alternatives]
        choices[key] = widths.index(max(widths))


def _grow(node: tuple, choices: dict[int, int]) -> bool:
    """Lengthen the first repeat that may still grow; False when none can."""
    kind = node[0]
    if kind == "seq":
        return any(_grow(child, choices) for child in node[1])
    if kind == "repeat":
        _, key, _, high, child = node
        if _grow(child, choices):
            return True
        if choices[key] < high:
            choices[key] += 1
            return True
        return False
    if kind == "branch":
        _, key, alternatives = node
        return _grow(alternatives[choices[key]], choices)
    return False


def _expand(node: tuple, choices: dict[int, int]) -> list[str]:
    kind = node[0]
    if kind == "chars":
        return [node[1]]
    if kind == "seq":
        return [chars for child in node[1] for chars in _expand(child, choices)]
    if kind == "repeat":
        _, key, _, _, child = node
        return _expand(child, choices) * choices[key]
    _, key, alternatives = node
    return _expand(alternatives[choices[key]], choices)
