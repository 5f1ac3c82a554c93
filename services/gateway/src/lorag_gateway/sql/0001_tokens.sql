-- API tokens: only the sha256 of each token is kept; the token itself is shown once.
CREATE TABLE IF NOT EXISTS gateway_tokens (
    token_id     text        PRIMARY KEY,
    owner        text        NOT NULL,
    token_sha256 text        NOT NULL UNIQUE,
    label        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX IF NOT EXISTS gateway_tokens_owner ON gateway_tokens (owner);
