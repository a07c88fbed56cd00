"""Report frames on disk: CSV byte for byte as pandas' `to_csv` writes it, but built in Arrow, and Parquet."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .files import atomic_file

FLOAT_FORMAT = "%.6g"
CHUNK_ROWS = 100_000


def _csv_line(values: list[object]) -> str:
    """One CSV line as the csv module writes it (pandas' writer: QUOTE_MINIMAL, '\\n')."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


# The characters this Python's csv module quotes a field for, found by asking it (of the delimiter,
# the quote and the line breaks; 3.11 leaves '\r' unquoted). A quoted field has its quotes doubled.
_QUOTED_FOR = "".join(c for c in ',"\r\n' if _csv_line([f"a{c}b", ""]) != f"a{c}b,\n")
_NEEDS_QUOTES = "[" + _QUOTED_FOR.replace("\r", "\\r").replace("\n", "\\n") + "]"


def _as_text(value: object) -> str:
    """A non-missing value of an object column as the csv module renders it (floats by repr)."""
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def _supported(dtype: object) -> bool:
    """Whether csv_cells renders this dtype (numpy float, int, bool, object; pandas strings)."""
    if isinstance(dtype, pd.StringDtype):
        return True
    return isinstance(dtype, np.dtype) and dtype.kind in "fiubO"


def csv_cells(series: pd.Series) -> pa.Array:
    """Each value of a column as its CSV field (large strings), as `to_csv(float_format='%.6g')` writes it."""
    dtype = series.dtype
    if not _supported(dtype):
        raise TypeError(f"csv_cells: no CSV rendering for dtype {dtype}")
    missing = series.isna().to_numpy()
    if dtype.kind == "f":
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bits = values.view(np.uint64)  # by bit pattern: -0.0 and 0.0 print differently
        unique, inverse = np.unique(bits, return_inverse=True)
        texts = ["" if x != x else FLOAT_FORMAT % x for x in unique.view(np.float64).tolist()]
        cells = pa.array(texts, pa.large_string()).take(pa.array(inverse.reshape(-1)))
        return pc.if_else(pa.array(missing), "", cells) if missing.any() else cells
    if dtype.kind == "b":
        return pa.array(np.where(series.to_numpy(), "True", "False"), pa.large_string())
    if dtype.kind in "iu":
        return pa.array(series.to_numpy()).cast(pa.large_string())
    if isinstance(dtype, pd.StringDtype):
        arr = pa.array(series, from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        cells = pc.fill_null(arr.cast(pa.large_string()), "")
    else:  # object: what pandas hands the csv module, rendered as the csv module would
        objects = series.to_numpy()
        cells = pa.array(
            ["" if m else _as_text(v) for v, m in zip(objects, missing, strict=True)],
            pa.large_string(),
        )
    needs = pc.match_substring_regex(cells, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return cells
    quote, empty = pa.scalar('"', pa.large_string()), pa.scalar("", pa.large_string())
    doubled = pc.replace_substring(cells, '"', '""')
    return pc.if_else(needs, pc.binary_join_element_wise(quote, doubled, quote, empty), cells)


def _rows(frame: pd.DataFrame) -> memoryview:
    """The CSV lines of a frame's rows (no header), each ending in '\\n'."""
    cells = [csv_cells(frame.iloc[:, i]) for i in range(frame.shape[1])]
    comma, newline, empty = (pa.scalar(t, pa.large_string()) for t in (",", "\n", ""))
    lines = pc.binary_join_element_wise(*cells, comma)
    lines = pc.binary_join_element_wise(lines, empty, newline)  # the line and '' joined by '\n'
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return memoryview(lines.buffers()[2])[start:end]


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as `frame.to_csv(index=False, float_format='%.6g', lineterminator='\\n')` would, atomically."""
    with atomic_file(path) as fh:
        if frame.shape[1] < 2 or not all(_supported(t) for t in frame.dtypes):
            # a lone empty field is quoted, dates have formats: pandas' own writer for these
            text = frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
            fh.write(text.encode("utf-8"))
            return
        fh.write(_csv_line([str(c) for c in frame.columns]).encode("utf-8"))
        for start in range(0, len(frame), CHUNK_ROWS):
            fh.write(_rows(frame.iloc[start : start + CHUNK_ROWS]))


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as Parquet (zstd; pandas dtypes kept in its metadata), atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_file(path) as fh:
        pq.write_table(table, fh, compression="zstd")
