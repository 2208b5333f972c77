"""Staying up through dependency outages: supervised loops, the database's availability, held work."""
