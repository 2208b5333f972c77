"""Agents' seat states, the state machine that drives them and the per-tenant seat rules."""
