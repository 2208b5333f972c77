"""Webhook rules: Standard Webhooks signing, the retry schedule and the target-address policy."""
