"""Staying up through outages: supervised loops, the database's availability, held work."""
