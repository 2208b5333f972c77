"""A tenant's phones (endpoints) as the HTTP API shows and accepts them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from ccbridge.api.schemas.seats import SafeText
from ccbridge.domain.endpoints import Endpoint, Technology


class EndpointIn(BaseModel):
    """Claim a phone for the tenant: a PJSIP endpoint, or an extension of the agents context."""

    technology: Technology = Field(
        Technology.PJSIP,
        description="`PJSIP` → `PJSIP/<name>`; `Local` → `Local/<name>@<agents context>`",
    )
    name: Annotated[str, Field(min_length=1, max_length=255)] = Field(
        description="The PJSIP endpoint id or extension: 1-64 letters, digits, `_`, `.`, `-`",
        examples=["1001"],
    )
    description: Annotated[SafeText, Field(max_length=200)] = ""


class EndpointOut(BaseModel):
    """A claimed phone; ``interface`` is what ccbridge puts into its queues."""

    id: str
    technology: Technology
    name: str
    interface: str
    description: str
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointOut:
        """Map from the domain record."""
        return cls(
            id=endpoint.id,
            technology=endpoint.technology,
            name=endpoint.name,
            interface=endpoint.interface,
            description=endpoint.description,
            created_at=endpoint.created_at,
            created_by=endpoint.created_by,
        )
