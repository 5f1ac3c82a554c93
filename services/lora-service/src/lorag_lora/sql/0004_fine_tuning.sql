-- The OpenAI fine-tuning API's files and jobs. A fine-tuning job is a lorag LOCAL_LORA job
-- (job_id); its state, events and result are the job tracker's (jobs, job_progress).
CREATE TABLE ft_files (
    file_id     text        PRIMARY KEY,
    owner       text        NOT NULL,
    filename    text        NOT NULL,
    purpose     text        NOT NULL,
    bytes       bigint      NOT NULL,
    examples    integer     NOT NULL,
    uri         text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX ft_files_owner ON ft_files (owner, created_at);

CREATE TABLE ft_jobs (
    ftjob_id         text        PRIMARY KEY,
    owner            text        NOT NULL,
    job_id           text        NOT NULL UNIQUE,
    model            text        NOT NULL,
    training_file    text        NOT NULL,
    validation_file  text,
    suffix           text,
    seed             bigint      NOT NULL,
    hyperparameters  jsonb       NOT NULL,
    adapter          text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ft_jobs_owner ON ft_jobs (owner, created_at);
