"""The baseline worker: recomputes rolling per-scope statistics in PostgreSQL on a schedule
and publishes them on the compacted `baselines` topic. One instance is active at a time."""
