-- EXTERNAL_HYBRID: the fine-tuning provider's job of a stage's current attempt, so a restarted
-- orchestrator follows (or cancels) that job instead of starting a second one.
ALTER TABLE saga_stages ADD COLUMN provider_job text;
