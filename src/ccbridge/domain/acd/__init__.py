"""Automatic call distribution: skill-group queues and who should be a member of them."""
