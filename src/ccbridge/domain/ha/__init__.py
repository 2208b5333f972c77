"""High availability: which node owns a PBX, and when it may still act on it."""
