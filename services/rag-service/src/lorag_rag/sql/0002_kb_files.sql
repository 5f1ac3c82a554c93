-- The file-level manifest of each knowledge base's live version: a file whose bytes and
-- ingest settings match its row is skipped unread by the tokenizer on the next ingest.
CREATE TABLE rag_kb_files (
    name      text    NOT NULL REFERENCES rag_knowledge_bases (name) ON DELETE CASCADE,
    source    text    NOT NULL,  -- the file's name inside the dataset: its chunks' source
    digest    text    NOT NULL,  -- sha256 of the file's bytes
    settings  text    NOT NULL,  -- digest of what turns bytes into vectors (model, chunking, fields)
    chunks    integer NOT NULL,  -- chunks the file holds in the live version
    pairs     integer NOT NULL,  -- question/answer pairs it carried (those files are still parsed)
    PRIMARY KEY (name, source)
);
