"""What the five chaoslab services share: one small module per pattern or concern."""
