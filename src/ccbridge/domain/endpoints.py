"""A tenant's phones (endpoints): the only interfaces a seat may put into a queue (ADR 0009).

An endpoint is a PJSIP endpoint (``PJSIP/<name>``) or an extension in ccbridge's agents context
(``Local/<exten>@<agents context>``, which the shipped dialplan dials as ``PJSIP/<exten>``).
The interface string sent to ``QueueAdd`` is always derived here from a validated name, never
taken from a request, so no caller can make a queue dial a trunk or another tenant's phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

MAX_NAME_LENGTH = 64
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""A PJSIP endpoint id or an extension: no ``/``, ``&``, ``@``, ``,``, spaces or CR/LF/NUL."""
CONTEXT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
DEFAULT_AGENTS_CONTEXT = "ccbridge-agents"
"""The context of ``asterisk/extensions-ccbridge.conf`` that rings an agent's softphone."""
MAX_ENDPOINTS_PER_TENANT = 10_000


class Technology(StrEnum):
    """How Asterisk reaches the phone."""

    PJSIP = "PJSIP"
    LOCAL = "Local"


class InvalidEndpointError(ValueError):
    """Raised when a name, context or interface cannot be an endpoint; ``field`` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_name(name: str) -> str:
    """Return *name* if it is a safe endpoint name or extension, else raise."""
    if len(name) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(name):
        raise InvalidEndpointError(
            f"an endpoint name is 1-{MAX_NAME_LENGTH} letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            "name",
        )
    return name


def check_context(context: str) -> str:
    """Return *context* if it is a plain dialplan context name, else raise."""
    if not CONTEXT_RE.fullmatch(context):
        raise InvalidEndpointError(f"not a dialplan context name: {context!r}", "context")
    return context


def interface_for(technology: Technology, name: str, agents_context: str) -> str:
    """The Asterisk interface of an endpoint: ``PJSIP/<name>`` or ``Local/<name>@<context>``."""
    check_name(name)
    if technology is Technology.PJSIP:
        return f"PJSIP/{name}"
    return f"Local/{name}@{check_context(agents_context)}"


def parse_interface(interface: str, agents_context: str) -> tuple[Technology, str] | None:
    """Split an interface back into (technology, name); ``None`` if no endpoint could have it.

    ``Local`` is only accepted in the agents context: any other context could reach a trunk.
    """
    tech, sep, rest = interface.partition("/")
    if not sep:
        return None
    if tech == Technology.PJSIP.value:
        candidate = (Technology.PJSIP, rest)
    elif tech == Technology.LOCAL.value:
        name, at, context = rest.partition("@")
        if not at or context != agents_context:
            return None
        candidate = (Technology.LOCAL, name)
    else:
        return None
    try:
        check_name(candidate[1])
    except InvalidEndpointError:
        return None
    return candidate


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A phone a tenant has claimed; ``name`` and ``interface`` are unique across tenants."""

    id: str
    tenant_id: str
    technology: Technology
    name: str
    interface: str
    created_at: datetime
    created_by: str
    description: str = ""

    def matches(self, selector: str) -> bool:
        """Say whether a client's choice (endpoint id, name or interface) names this endpoint."""
        return selector in (self.id, self.name, self.interface)
