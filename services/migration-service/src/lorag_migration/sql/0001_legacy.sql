-- The old system's job table as it had it, a verbatim audit copy of every row taken before it was
-- converted, and one record per legacy row saying what the conversion did with it.
CREATE TABLE IF NOT EXISTS legacy_training_jobs (
    id            text        PRIMARY KEY,
    minion_id     text,
    type          text        NOT NULL,  -- RAG | LORA | HYBRID | FINE_TUNING
    status        text        NOT NULL,  -- pending | running | done | error | failed | cancelled
    config        jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- free-form; may hold anything
    error_message text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Same columns and types as legacy_training_jobs, so a rollback restores rows exactly.
CREATE TABLE legacy_job_audit (
    id            text        PRIMARY KEY,
    minion_id     text,
    type          text        NOT NULL,
    status        text        NOT NULL,
    config        jsonb       NOT NULL,
    error_message text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    run_id        uuid        NOT NULL,
    copied_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE legacy_conversions (
    legacy_id   text        PRIMARY KEY,
    job_id      text,
    run_id      uuid        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('converted', 'unconvertible')),
    reason      text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'converted') = (job_id IS NOT NULL))
);
CREATE INDEX legacy_conversions_outcome ON legacy_conversions (outcome);
