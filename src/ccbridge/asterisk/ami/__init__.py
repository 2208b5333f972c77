"""Asterisk Manager Interface (AMI) client and codec."""
