-- Each evaluated question of a minion, with its embedding and every variant's score on it, so a
-- question is routed to the variant that did best on questions like it, not one global winner.
ALTER TABLE minions ADD COLUMN evaluations jsonb NOT NULL DEFAULT '[]'::jsonb;
