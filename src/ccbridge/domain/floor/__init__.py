"""Floor rules and the alerts a supervisor gets when one is broken (docs/wallboard.md)."""
