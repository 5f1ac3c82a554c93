-- An adapter name belongs to the owner who made its first version; others cannot add versions.
ALTER TABLE lora_adapters ADD COLUMN owner text;
UPDATE lora_adapters a SET owner = j.owner FROM jobs j WHERE j.job_id = a.job_id;
