-- Every change to a knowledge base's row (a committed version, a claim, a drop), whoever makes
-- it, is announced on rag_kb_changed with the KB's name: the rag-services cache the rows of live
-- KBs for their queries and drop an entry when its KB changes.
CREATE FUNCTION rag_kb_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rag_kb_changed', COALESCE(NEW.name, OLD.name));
    RETURN NULL;
END;
$$;

CREATE TRIGGER rag_kb_changed AFTER INSERT OR UPDATE OR DELETE ON rag_knowledge_bases
    FOR EACH ROW EXECUTE FUNCTION rag_kb_changed();
