"""Seat leases (seats per kind, price, notice periods) and seat utilisation."""
