"""Everything that runs, breaks or checks the chaoslab stack from the outside."""
