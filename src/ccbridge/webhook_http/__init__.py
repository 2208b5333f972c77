"""Adapter: outbound webhook HTTP (httpx) with the SSRF guard at connect time."""
