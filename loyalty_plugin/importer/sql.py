"""IN lists in chunks, for the batch writers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

IN_CHUNK = 1000


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
