"""ftplib connections to the checked address, with data connections kept on it.

The control connection goes to the address the egress policy allowed (resolved once); the
name is kept for TLS (server name and certificate check). A ``PASV`` reply naming another
address is ignored: data connections go to the control connection's peer, as curl does.
"""

from __future__ import annotations

import ftplib
from collections.abc import Sequence

from ccbridge.domain.egress import IpNetwork
from ccbridge.egress.resolve import Resolver, pick_address, system_resolve


def guarded_connect(
    ftp: ftplib.FTP,
    host: str,
    port: int,
    *,
    timeout: float,
    allow: Sequence[IpNetwork],
    resolver: Resolver = system_resolve,
) -> str:
    """Connect *ftp* to the checked address of *host* in passive mode; return the address."""
    address = pick_address(host, port, allow, resolver)
    # PASV data goes to the control connection's peer only (ftplib's default; made explicit).
    setattr(ftp, "trust_server_pasv_ipv4_address", False)  # noqa: B010  (untyped in typeshed)
    ftp.set_pasv(True)
    ftp.connect(address, port, timeout=timeout)
    ftp.host = host  # FTP_TLS wraps control and data with server_hostname=self.host
    return address
