"""Adapter: the tenant-facing FTP(S) server (pyftpdlib in its own thread) and the push client."""
