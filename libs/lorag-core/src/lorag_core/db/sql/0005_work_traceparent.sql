-- The trace a work item belongs to (W3C traceparent of the span that accepted it), so the worker
-- that claims it, after any restart, continues the job's trace instead of starting a new one.
ALTER TABLE work_items ADD COLUMN traceparent text;
