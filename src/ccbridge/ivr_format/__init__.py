"""The IVR flow file format: pydantic models, size/depth limits and parsing to the domain."""
