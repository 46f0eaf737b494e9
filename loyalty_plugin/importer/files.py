"""Reading the files: ``.csv`` or ``.csv.gz``, UTF-8, as a header and numbered records."""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ..errors import BadInput

PathLike = str | os.PathLike[str]


def count_lines(path: PathLike) -> int:
    """Data lines (newlines less the header), for a progress bar: one pass over raw bytes."""
    newlines, last = 0, b"\n"
    with _unreadable_as_bad_input(path), _open_binary(path) as stream:
        while chunk := stream.read(1 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        newlines += 1
    return max(newlines - 1, 0)


def _is_gzip(path: PathLike) -> bool:
    return os.fspath(path).endswith(".gz")


def _open_binary(path: PathLike) -> Any:
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _open_text(path: PathLike) -> TextIO:
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


class _Table:
    """A CSV file's header and its records, each with the file line it starts on."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._reader = csv.reader(stream)
        header = next(self._reader, None)
        if not header:
            raise BadInput(f"{name} is empty: the first line must name the columns.", field="file")
        self.header = [h.strip() for h in header]

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def records(self) -> Iterator[tuple[int, list[str]]]:
        start = self._reader.line_num + 1
        for row in self._reader:
            if row:
                yield start, row
            start = self._reader.line_num + 1


@contextmanager
def _table(path: PathLike) -> Iterator[_Table]:
    with _unreadable_as_bad_input(path), _open_text(path) as stream:
        yield _Table(stream, os.path.basename(os.fspath(path)))


@contextmanager
def _unreadable_as_bad_input(path: PathLike) -> Iterator[None]:
    name = os.path.basename(os.fspath(path))
    try:
        yield
    except UnicodeDecodeError:
        raise BadInput(f"{name} is not UTF-8 text: save it as 'CSV UTF-8' and import it again.", field="file") from None
    except (csv.Error, gzip.BadGzipFile, EOFError) as exc:
        raise BadInput(f"{name} cannot be read as CSV: {exc}.", field="file") from None
