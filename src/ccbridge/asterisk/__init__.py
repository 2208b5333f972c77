"""Adapter for Asterisk: the AMI and FastAGI wire protocols."""
