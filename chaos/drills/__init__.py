"""Game-day drills: every runbook incident run end to end, under load, with a verdict."""
