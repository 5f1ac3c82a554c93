-- Measured outcomes of finished hybrids, keyed by what their dataset looked like, so the
-- recommender can say what worked for similar datasets.
CREATE TABLE training_outcomes (
    job_id        text        PRIMARY KEY,
    shape         text        NOT NULL,
    tokens        bigint      NOT NULL,
    profile       jsonb       NOT NULL,
    scores        jsonb       NOT NULL,
    seconds       double precision NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX training_outcomes_shape ON training_outcomes (shape, tokens);
