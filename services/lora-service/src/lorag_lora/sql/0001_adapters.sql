-- The adapter registry of the lora-service: versions per name, aliases and their history.
CREATE TABLE lora_adapters (
    name                text        NOT NULL,
    version             integer     NOT NULL CHECK (version >= 1),
    job_id              text        NOT NULL UNIQUE,   -- a retried job reuses its own version
    status              text        NOT NULL DEFAULT 'reserved',  -- reserved | ready
    base_model          text,
    base_model_revision text,
    uri                 text,
    sha256              text,
    size_bytes          bigint,
    lora_config         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    training_config     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    metrics             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    ready_at            timestamptz,
    published_at        timestamptz,                  -- adapter.created went out
    PRIMARY KEY (name, version)
);

CREATE TABLE lora_adapter_aliases (
    name       text        NOT NULL,
    alias      text        NOT NULL,
    version    integer     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES lora_adapters (name, version)
);

CREATE TABLE lora_alias_history (
    id               bigserial   PRIMARY KEY,
    name             text        NOT NULL,
    alias            text        NOT NULL,
    version          integer     NOT NULL,
    previous_version integer,
    promoted_by      text        NOT NULL,
    promoted_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lora_alias_history_name ON lora_alias_history (name, alias, promoted_at);
