"""Adapter: the tenants' CRM systems over HTTP (the IVR's lookup node)."""
