-- The durable work queue of job-running services: a job accepted from Kafka is stored here before
-- its message is acknowledged, so a crash never loses it; leases let a restarted worker take over.
CREATE TABLE work_items (
    service      text        NOT NULL,
    job_id       text        NOT NULL,
    request      jsonb       NOT NULL,
    status       text        NOT NULL DEFAULT 'queued',  -- queued | running | done
    outcome      text,                                   -- SUCCEEDED | FAILED | CANCELLED
    attempts     integer     NOT NULL DEFAULT 0,
    next_seq     bigint      NOT NULL DEFAULT 1,
    lease_owner  text,
    lease_until  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, job_id)
);
CREATE INDEX work_items_claimable ON work_items (service, created_at) WHERE status <> 'done';
