"""The contract's monthly system-stability SLA (F1) and its deduction tiers (F2)."""
