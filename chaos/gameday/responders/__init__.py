"""Responder programs for `chaoslab gameday start --responder "<command>"`."""
