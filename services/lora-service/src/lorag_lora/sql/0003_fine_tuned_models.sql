-- Fully fine-tuned models are registered like adapters (names, versions, aliases, owner) and
-- served as whole models: `kind` tells them apart.
ALTER TABLE lora_adapters ADD COLUMN kind text NOT NULL DEFAULT 'adapter';  -- adapter | model
