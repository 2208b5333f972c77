"""Call recordings: the index record, file layout, retention horizon, signed links (pure)."""
