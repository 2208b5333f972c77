"""Integer bounds of the HTTP API: every integer a client sends fits a signed 64-bit column.

Python ints are unbounded, the database's are not: 2**63 in a path or query reached the
driver and answered 500. One type, used for every integer parameter, answers 422 instead.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""An integer a BIGINT column holds; narrow it further with ``Query(ge=...)``/``Path(...)``."""
