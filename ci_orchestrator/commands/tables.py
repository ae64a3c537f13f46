"""Plain text tables, as the listing commands print them: columns padded to their widest cell."""

from __future__ import annotations


def table(rows: list[list[str]]) -> list[str]:
    """One line per row, each cell left-aligned in its column, trailing blanks cut."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
