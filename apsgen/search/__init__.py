"""OmegaPRM search and the per-step Monte Carlo baseline: pure (no Ray, no engine imports)."""
