-- The window's last day, where it is not the recompute's: the baseline worker's window ends
-- at the newest stored transaction's day (baseline_worker.compute.window_anchor), today while
-- the stream is current, earlier for a history loaded or replayed after the fact. Kept with
-- each baseline (NULL: the day of computed_at) so that an alert's explanation names the days
-- its baseline saw. Adding a nullable column without a default rewrites nothing.
ALTER TABLE baseline_history ADD COLUMN window_end date;
