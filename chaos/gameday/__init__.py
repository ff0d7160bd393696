"""Game day: a game master injects hidden incidents under load and scores the responders."""
