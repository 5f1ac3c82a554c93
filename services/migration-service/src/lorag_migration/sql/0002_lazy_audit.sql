-- The audit copy of a converted legacy row is taken when that row first changes, not when it is
-- converted: conversion leaves legacy rows in place, so until one is updated, deleted or
-- truncated the table itself holds the state a rollback restores. The first change of a converted
-- row saves the row as it was converted (OLD) into legacy_job_audit; later changes keep that copy.
-- The conversion takes a SHARE lock on legacy_training_jobs per batch, so no write can slip in
-- between reading a row and committing its conversion record without this trigger seeing it.
CREATE FUNCTION legacy_audit_before_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO legacy_job_audit (id, minion_id, type, status, config, error_message,
                                  created_at, updated_at, run_id)
    SELECT OLD.id, OLD.minion_id, OLD.type, OLD.status, OLD.config, OLD.error_message,
           OLD.created_at, OLD.updated_at, c.run_id
    FROM legacy_conversions c WHERE c.legacy_id = OLD.id AND c.outcome = 'converted'
    ON CONFLICT (id) DO NOTHING;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER legacy_audit_before_change BEFORE UPDATE OR DELETE ON legacy_training_jobs
    FOR EACH ROW EXECUTE FUNCTION legacy_audit_before_change();

-- TRUNCATE fires no row triggers: copy every converted row not copied yet, before it goes.
CREATE FUNCTION legacy_audit_before_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO legacy_job_audit (id, minion_id, type, status, config, error_message,
                                  created_at, updated_at, run_id)
    SELECT l.id, l.minion_id, l.type, l.status, l.config, l.error_message,
           l.created_at, l.updated_at, c.run_id
    FROM legacy_training_jobs l JOIN legacy_conversions c ON c.legacy_id = l.id
    WHERE c.outcome = 'converted'
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER legacy_audit_before_truncate BEFORE TRUNCATE ON legacy_training_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION legacy_audit_before_truncate();

-- Two values, read only by whole-table counts and the rollback's full scan: the index was written
-- once per converted row and never chosen by a query.
DROP INDEX legacy_conversions_outcome;
