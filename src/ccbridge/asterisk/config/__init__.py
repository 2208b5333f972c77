"""Asterisk configuration ccbridge renders into its own generated/ folder (never the admin's)."""
