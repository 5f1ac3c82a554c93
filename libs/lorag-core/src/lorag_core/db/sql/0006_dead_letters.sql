-- Poison messages (issue 16): retry counts that survive a crash, and one dead letter per message.
--
-- `delivery_attempts` counts, per consumer group, how many times handling of a record STARTED.
-- The count is written before the handler runs, so a record that kills its process (SIGKILL,
-- out of memory, a segfault) is still counted, and after `LORAG_KAFKA_MAX_ATTEMPTS` starts it
-- is dead-lettered instead of handled. A row is deleted when the record is handled or set aside.
CREATE TABLE delivery_attempts (
    consumer    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    attempts    integer     NOT NULL,
    first_at    timestamptz NOT NULL DEFAULT now(),
    last_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition, "offset")
);

-- One row per record set aside, whichever consumer groups refused it: the first one publishes
-- the letter to `<topic>.dlq`, the others add their name to `consumers`. `lorag dlq` lists,
-- shows and replays these rows (the payload, key and headers are kept byte for byte).
CREATE TABLE dead_letters (
    id             bigserial   PRIMARY KEY,
    original_topic text        NOT NULL,
    partition      integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    key            bytea,
    headers        jsonb       NOT NULL DEFAULT '[]',  -- [[name, base64 value], ...] in order
    payload        bytea       NOT NULL,
    consumers      text[]      NOT NULL,
    reason_code    text        NOT NULL,
    reason         text        NOT NULL,
    attempts       integer     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    replays        integer     NOT NULL DEFAULT 0,
    replayed_at    timestamptz,
    UNIQUE (original_topic, partition, "offset")
);
CREATE INDEX dead_letters_topic ON dead_letters (original_topic, id);
