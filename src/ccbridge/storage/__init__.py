"""Adapter: the recordings tree on local disk (hashing and deleting off the event loop)."""
