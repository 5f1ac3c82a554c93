-- Jobs as the events describe them, their progress log, and the events consumers have handled.
CREATE TABLE jobs (
    job_id              text PRIMARY KEY,
    requested_type      text,
    effective_type      text,
    owner               text,
    minion_id           text,
    parent_job_id       text,
    stage_name          text,
    request             jsonb,
    state               text        NOT NULL DEFAULT 'QUEUED',
    last_seq            bigint      NOT NULL DEFAULT 0,
    stage               text,
    percent             real,
    eta_seconds         real,
    metrics             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    message             text,
    result              jsonb,
    error               jsonb,
    trace_id            text,
    cancel_requested_at timestamptz,
    cancel_reason       text,
    requested_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);
CREATE INDEX jobs_owner_created ON jobs (owner, created_at DESC);
CREATE INDEX jobs_parent ON jobs (parent_job_id) WHERE parent_job_id IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state);

CREATE TABLE job_progress (
    job_id      text        NOT NULL,
    seq         bigint      NOT NULL,
    event_id    uuid        NOT NULL,
    state       text        NOT NULL,
    producer    text        NOT NULL,
    stage       text,
    percent     real,
    eta_seconds real,
    metrics     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    message     text,
    result      jsonb,
    error       jsonb,
    verdict     text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
