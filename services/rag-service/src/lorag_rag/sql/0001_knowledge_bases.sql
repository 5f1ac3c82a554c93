-- Knowledge bases of the rag-service: one row per KB, one row per committed version.
CREATE TABLE rag_knowledge_bases (
    name            text        PRIMARY KEY,
    owner           text        NOT NULL,
    collection      text        NOT NULL,
    embedding_model text        NOT NULL,  -- locked: every version embeds with the same model
    dimension       integer     NOT NULL,
    version         integer     NOT NULL DEFAULT 0,  -- 0: created, nothing committed yet
    chunk_count     integer     NOT NULL DEFAULT 0,
    source_count    integer     NOT NULL DEFAULT 0,
    hit_rate        double precision,
    mrr             double precision,
    eval_pairs      integer,
    eval_k          integer,
    job_id          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rag_kb_versions (
    name        text        NOT NULL REFERENCES rag_knowledge_bases (name) ON DELETE CASCADE,
    version     integer     NOT NULL,
    job_id      text        NOT NULL UNIQUE,  -- a job commits at most one version
    summary     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);
