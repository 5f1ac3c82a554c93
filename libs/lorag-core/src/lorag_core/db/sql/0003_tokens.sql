-- API tokens, now in the kernel's schema so admin tools (`lorag tokens`) can create them where
-- no gateway is installed. The gateway's own 0001_tokens creates the same table; both use
-- IF NOT EXISTS, so either may run first.
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
