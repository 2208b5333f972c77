"""KPIs defined once (formula, unit, inputs, thresholds) and the per-call facts they count."""
