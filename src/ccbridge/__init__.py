"""ccbridge: a hosted, multi-tenant call centre on a stock Asterisk PBX."""

__version__ = "0.1.0"
