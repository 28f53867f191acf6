"""Ray actors, scheduling, backpressure, progress, retries and resume. No search logic here."""
