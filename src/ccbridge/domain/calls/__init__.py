"""Call records and the reducer that builds them from telephony events."""
