"""The four contract reports (RPT-01) as pure functions of call records and state intervals."""
