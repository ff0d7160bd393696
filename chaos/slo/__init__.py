"""Service level objectives: their definitions (spec), the Prometheus rules generated from
them (rules), and the error-budget arithmetic the drills report with (budget). Alertmanager's
routing around them lives beside Prometheus' configuration, in chaos/alertmanager_config.py."""
