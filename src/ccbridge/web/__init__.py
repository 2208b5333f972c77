"""The web console: static pages (no build step) served by ccbridge over its own public API."""
