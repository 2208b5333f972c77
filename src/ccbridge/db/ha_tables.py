"""The PBX ownership lease (ADR 0026): one row per PBX, its holder and its fencing epoch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.tables import Base, UTCDateTime


class PbxOwnerRow(Base):
    """Who owns the PBX's AMI connection, since when and until when (database clock)."""

    __tablename__ = "pbx_owners"
    __table_args__ = (Index("uq_pbx_owners_system_name", "system_name", unique=True),)

    pbx: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(128))
    epoch: Mapped[int] = mapped_column(BigInteger)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    """The owner's API address: standbys forward owner-only requests there (ADR 0031)."""
    system_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The PBX's Asterisk ``systemname`` as its owner last read it at AMI login (``""``: none
    set; ``NULL``: never read). Unique, so two PBXs never share call ids (ADR 0033)."""
