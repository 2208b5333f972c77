"""Render ``.env.example`` from the settings model, so the example can never miss a setting.

Every leaf setting becomes ``CCBRIDGE_<PATH>=<default>`` under a comment taken from its
docstring (``use_attribute_docstrings``); nested models become sections named by their class
docstring. Optional settings without a default are written commented out. The committed
``.env.example`` is this output (``ccbridge settings env-example``; a test compares them).
"""

from __future__ import annotations

import json
import textwrap
from enum import Enum
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from ccbridge.settings import Settings

WIDTH = 99
HEADER = """\
# Every ccbridge setting with its default. Generated from src/ccbridge/settings.py by
# `ccbridge settings env-example > .env.example` (a test keeps the two equal): edit the
# settings model, not this file. Copy to .env and change what you need; nested keys use "__".
# Settings without a default are commented out. docs/install.md walks through a first setup.
"""


class MissingDescriptionError(ValueError):
    """A setting has no docstring, so the example could not say what it does."""


def render_env_example(model: type[BaseModel] = Settings, prefix: str = "CCBRIDGE_") -> str:
    """Return the text of ``.env.example`` for ``model``: general settings, then sections."""
    general: list[str] = []
    sections: list[str] = []
    for name, field in model.model_fields.items():
        nested = _nested_model(field)
        if nested is None:
            general.append(_entry(f"{prefix}{name.upper()}", field))
        else:
            sections.append(_section(nested, f"{prefix}{name.upper()}__"))
    head = _comment(f"---- {prefix}*: general")
    return "\n".join([HEADER, head + "".join(general), *sections])


def _section(model: type[BaseModel], prefix: str) -> str:
    title = (model.__doc__ or "").strip().splitlines()[0]
    lines = [_comment(f"---- {prefix}*: {title}")]
    lines += [_entry(f"{prefix}{n.upper()}", f) for n, f in model.model_fields.items()]
    return "".join(lines)


def _comment(text: str) -> str:
    flat = " ".join(text.replace("``", "`").split())
    return textwrap.fill(flat, WIDTH, initial_indent="# ", subsequent_indent="# ") + "\n"


def _nested_model(field: FieldInfo) -> type[BaseModel] | None:
    """A required-or-defaulted nested model (not an optional one, which is one JSON value)."""
    ann = field.annotation
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return None


def _entry(env: str, field: FieldInfo) -> str:
    if not field.description:
        raise MissingDescriptionError(f"{env} has no docstring in settings.py")
    comment = _comment(field.description)
    default = field.get_default(call_default_factory=True)
    if default is None:
        return f"{comment}# {env}=\n"
    return f"{comment}{env}={_value(default)}\n"


def _value(value: Any) -> str:
    """The default as the environment spells it (JSON for lists and objects)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, PurePath):
        text = str(value)
        return text if value.is_absolute() or text.startswith(".") else f"./{text}"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)
