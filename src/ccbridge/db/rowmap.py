"""Map ORM rows to the frozen records of the ports and back, by field name.

Repositories read and write records whose fields are named like the row's columns; spelling
each one out per table repeated the same lines (``duplicates``) and let a new field be missed.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    R = TypeVar("R", bound=DataclassInstance)
else:
    R = TypeVar("R")


def record_from_row(cls: type[R], row: object, **overrides: Any) -> R:
    """Build *cls* from the same-named attributes of *row*; *overrides* replace or add fields."""
    values = {f.name: getattr(row, f.name) for f in fields(cls) if f.name not in overrides}
    return cls(**values, **overrides)


def row_values(
    record: DataclassInstance, *, skip: tuple[str, ...] = (), **overrides: Any
) -> dict[str, Any]:
    """The column values of *record* (its fields minus *skip*), *overrides* replacing some."""
    values = {f.name: getattr(record, f.name) for f in fields(record) if f.name not in skip}
    values.update(overrides)
    return values
