-- Which worker instance ran a job, and every claim of a work item (issue 13: replicas and a cap
-- on attempts). `jobs.worker` is the instance that claimed the job last, so after a takeover it
-- names the survivor; `work_items.workers` lists the claiming instances in order, one per attempt.
ALTER TABLE jobs ADD COLUMN worker text;
ALTER TABLE work_items ADD COLUMN workers text[] NOT NULL DEFAULT '{}';
