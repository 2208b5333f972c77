"""File responses whose ``Range`` handling follows RFC 9110: an invalid range is ignored."""

from __future__ import annotations

from starlette.responses import FileResponse, MalformedRangeHeader


class RangeFileResponse(FileResponse):
    """A FileResponse that answers 200 with the whole file when ``Range`` cannot be parsed.

    RFC 9110 §14.2: a server MUST ignore a Range header it does not understand; Starlette
    answers 400 instead. An unsatisfiable (well-formed) range still answers 416.
    """

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []  # no ranges: the whole file, 200
