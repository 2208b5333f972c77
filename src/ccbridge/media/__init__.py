"""Adapter: audio conversion for IVR prompts (sox in a subprocess)."""
