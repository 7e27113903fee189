"""Markdown that a branch cannot forge: every value from params, data or git goes through here.

The PR report is rendered by GitHub, so a param value, a column or category
name, a drift note or a branch name could otherwise inject HTML (`<img
onerror>`), links (`](javascript:...)`), mentions, or break a table row (`|`,
a newline) or a code span (a backtick). `text` escapes a value as plain
inline text; `code` puts it in a code span that nothing inside can close.
"""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones markdown or GFM acts on
# inside a line. An underscore inside a word (snake_case) cannot start emphasis, so it stays readable.
_SPECIAL = re.compile(r"([\\`*{}\[\]()#+!|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def one_line(value: object) -> str:
    """The value as one line: line breaks become spaces, other control characters go."""
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", str(value)))


def text(value: object) -> str:
    """Plain inline text: no HTML, no links, no emphasis, no mention, safe inside a table cell."""
    escaped = "".join(_HTML.get(char, char) for char in one_line(value))
    escaped = _SPECIAL.sub(r"\\\1", escaped)
    # `@name` would notify a user or team, and `#12` link an issue: break both with a zero-width joiner.
    return re.sub(r"([@#])(?=\w)", "\\1\u200d", escaped)


def code(value: object) -> str:
    """An inline code span around the value, fenced with more backticks than it contains; table-safe."""
    content = one_line(value).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if content.startswith("`") or content.endswith("`") or not content.strip() else ""
    return f"{fence}{pad}{content}{pad}{fence}"
