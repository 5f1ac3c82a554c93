-- Saga state: which stage runs as which sub-job, and what was compensated; restarts continue here.
CREATE TABLE saga_stages (
    parent_job_id  text        NOT NULL,
    stage          text        NOT NULL,
    sub_job_id     text        NOT NULL,
    attempt        integer     NOT NULL DEFAULT 1,
    started_at     timestamptz NOT NULL DEFAULT now(),
    compensated_at timestamptz,
    PRIMARY KEY (parent_job_id, stage)
);

-- What a finished hybrid produced: a minion and how each way of answering scored.
CREATE TABLE minions (
    name           text        PRIMARY KEY,
    owner          text        NOT NULL,
    job_id         text        NOT NULL,
    training_type  text        NOT NULL,
    kb             text,
    adapter        text,
    llm            jsonb       NOT NULL,
    scores         jsonb       NOT NULL,
    best_variant   text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
