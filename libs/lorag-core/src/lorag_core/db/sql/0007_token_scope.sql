-- Tokens can expire and can be read-only; last_used_at (already a column) is now written, at
-- most once per gateway token-cache period.
ALTER TABLE gateway_tokens ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE gateway_tokens ADD COLUMN IF NOT EXISTS read_only boolean NOT NULL DEFAULT false;
