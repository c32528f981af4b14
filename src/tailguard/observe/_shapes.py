"""Statement shapes for ``QueryCounter``: one shape per query whatever its values, whether a
shape only reads, and a cheap key per parameter set."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["is_read", "parameters_key", "statement_shape"]

_TOKEN = re.compile(
    r"""(?P<ident>"(?:[^"]|"")*")                   # a quoted identifier: kept
      | (?P<comment>/\*.*?\*/|--[^\n]*)              # dropped
      | (?P<value>'(?:[^']|'')*'                     # string literal
         | \$\d+ | %\(\w+\)s | %s                    # numeric_dollar, pyformat, format
         | (?<![:\w]):[A-Za-z_]\w*                   # named (never a ::cast)
         | __\[POSTCOMPILE_\w+\]                     # an IN list not yet expanded
         | (?<![\w$.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b)
    """,
    re.S | re.X,
)
_CAST = r"(?:::\w+(?:\([?, ]*\))?)?"  # asyncpg renders $1::INTEGER
_IN_LIST = re.compile(rf"\bIN \(\?{_CAST}(?: ?, ?\?{_CAST})*\)", re.I)
_VALUES = re.compile(r"\bVALUES (\([^()]*\))(?: ?, ?\1)+", re.I)
_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")
_WRITE = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE)\b", re.I)
_READS = frozenset({"SELECT", "VALUES", "TABLE", "SHOW"})


def _replace(match: re.Match[str]) -> str:
    if match.lastgroup == "ident":
        return match.group()
    return " " if match.lastgroup == "comment" else "?"


@functools.lru_cache(maxsize=4096)
def statement_shape(sql: str) -> str:
    """``sql`` normalised so that one query with other values has one shape:
    ``SELECT a FROM t WHERE id IN ($1::INTEGER, $2::INTEGER)`` ->
    ``SELECT a FROM t WHERE id IN (...)``. Cached per distinct string (4,096 of them)."""
    shape = " ".join(_TOKEN.sub(_replace, sql).split())
    shape = _IN_LIST.sub("IN (...)", shape)
    return _VALUES.sub(r"VALUES \1", shape)


@functools.lru_cache(maxsize=4096)
def is_read(shape: str) -> bool:
    """Whether ``shape`` is a query (``SELECT``, ``SELECT ... FOR UPDATE``, ``VALUES``, or a
    ``WITH`` that changes no rows), not an ``INSERT``, ``UPDATE``, ``DELETE`` or DDL."""
    first = _FIRST_WORD.match(shape)
    word = first.group(1).upper() if first else ""
    if word == "WITH":
        return _WRITE.search(_QUOTED.sub(" ", shape)) is None
    return word in _READS


_executemany_ids = itertools.count()


def parameters_key(parameters: Any, executemany: bool) -> int:
    """A hash of one parameter set (never the values themselves, to bound memory)."""
    if executemany:  # one call with many rows: its own parameter set, never hashed row by row
        return hash(("executemany", next(_executemany_ids)))
    kind = type(parameters)
    if kind is dict:  # the usual shapes first: an isinstance() on an ABC costs more
        values: Any = tuple(parameters.values())
    elif kind is tuple:
        values = parameters
    elif isinstance(parameters, Mapping):
        values = tuple(parameters.values())
    elif isinstance(parameters, list | tuple):
        values = tuple(parameters)
    else:
        values = parameters
    try:
        return hash(values)
    except TypeError:  # a list or dict value (ARRAY, JSON)
        return hash(repr(values))
