"""HTTP API adapter (FastAPI)."""
