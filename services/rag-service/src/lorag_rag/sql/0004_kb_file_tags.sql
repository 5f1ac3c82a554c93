-- The object store's tag of each manifest file's bytes (ETag and size, from the listing): when
-- the next ingest's listing shows the same tag, the file is kept without being read.
ALTER TABLE rag_kb_files ADD COLUMN tag text;
