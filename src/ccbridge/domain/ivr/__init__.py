"""IVR flows: the graph model, its validation rules, schedules and the step engine (pure)."""
