"""FastAGI server and typed AGI session."""
