"""Adapter: secrets at rest (AES-GCM with a key ring) and Ed25519 purge-report signatures."""
