-- The trace each stage's sub-job was started in (W3C traceparent of the hybrid's span), so a
-- stage retried or compensated after an orchestrator restart stays in the hybrid's trace.
ALTER TABLE saga_stages ADD COLUMN traceparent text;
