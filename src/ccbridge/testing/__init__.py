"""Shipped test helpers: a fake Asterisk speaking real AMI and FastAGI over TCP."""
