"""Running jobs on a Ray cluster through the Ray Jobs API (submit, status, logs, stop)."""
