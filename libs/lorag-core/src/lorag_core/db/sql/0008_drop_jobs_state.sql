-- No query filters jobs by state alone: the one listing always names its owner and walks
-- jobs_owner_created in created_at order, every other read is by job_id. The index on a
-- handful of values cost an entry per inserted job and kept state changes from being HOT updates.
DROP INDEX jobs_state;
