"""Where a key sits in a TOML file: its line number, so that an error can point at it.

`tomllib` keeps no positions, so the text is scanned line by line: table headers (`[t]`,
`[[t]]`, counted per array) and `key = value` lines outside multi-line strings. Good enough
for suite files as people write them; when a key cannot be placed, there is no line (never a
wrong one: a key is placed only in the table it belongs to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]""")
_ITEM = re.compile(r"^(?P<table>[A-Za-z0-9_-]+)\[(?P<index>[^\]]*)\]\.?(?P<rest>.*)$")


@dataclass(frozen=True)
class _Entry:
    table: str  # "" for the top level, `variants`, `matrix`, `scoring.fields` ...
    index: int  # which [[table]] of an array of tables (0 for a plain table)
    key: str  # the first part of the key (`max_retries` of `max_retries = 3`)
    line: int


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'" else name


def _entries(text: str) -> tuple[list[_Entry], dict[tuple[str, int], int]]:
    """Every `key =` line with its table, and the line of every table header."""
    entries: list[_Entry] = []
    headers: dict[tuple[str, int], int] = {}
    arrays: dict[str, int] = {}
    table, index, fence = "", 0, ""
    for number, line in enumerate(text.splitlines(), start=1):
        if fence:  # inside a multi-line string: only its end matters
            if line.count(fence) % 2 == 1:
                fence = ""
            continue
        header = _HEADER.match(line)
        if header:
            table = ".".join(_unquote(p) for p in header.group(2).split("."))
            if header.group(1) == "[[":
                index = arrays.get(table, -1) + 1
                arrays[table] = index
            else:
                index = 0
            headers.setdefault((table, index), number)
            continue
        key = _KEY.match(line)
        if key:
            entries.append(_Entry(table, index, _unquote(key.group(1)), number))
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                fence = quote
                break
    return entries, headers


def key_line(text: str, key: str, fallbacks: tuple[str, ...] = ()) -> int | None:
    """The line of `key` in TOML `text`: `repeats`, `variants[1].timeout`, `matrix.models`,
    `scoring.fields.name`, or `matrix[<variant>].timeout` (a key of the [matrix] table). The
    `fallbacks` are tables to look in next (a variant's key may come from [defaults])."""
    entries, headers = _entries(text)
    item = _ITEM.match(key)
    if item and item.group("index").isdigit():
        table, index, rest = item.group("table"), int(item.group("index")), item.group("rest")
    elif item:  # matrix[<generated variant>].key: a key of the [matrix] table
        table, index, rest = item.group("table"), 0, item.group("rest")
    else:
        table, index, rest = "", 0, key
    places = [(table, index), *((t, 0) for t in fallbacks)]
    parts = rest.split(".") if rest else []
    for place_table, place_index in places:
        # the longest table prefix that is a header: `scoring.fields` + `name`
        for cut in range(len(parts), -1, -1):
            sub = ".".join(p for p in (place_table, *parts[:cut]) if p)
            leaf = parts[cut] if cut < len(parts) else None
            if leaf is None:
                if sub == place_table:
                    continue
                for (name, at), line in headers.items():  # [scoring] or [scoring.fields]
                    if at == place_index and (name == sub or name.startswith(sub + ".")):
                        return line
                continue
            for entry in entries:
                if (entry.table, entry.index, entry.key) == (sub, place_index, leaf):
                    return entry.line
        if not parts and (place_table, place_index) in headers:
            return headers[(place_table, place_index)]
    for entry in entries:  # an inline table or array of tables: the line that opens it
        if entry.table == "" and entry.key == (table or (parts[0] if parts else "")):
            return entry.line
    return None
