"""Supervised periodic jobs."""
