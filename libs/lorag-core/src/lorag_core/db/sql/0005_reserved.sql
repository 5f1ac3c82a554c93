-- Placeholder for version 5, which another branch (issue 16, part 4: tokens) adds; migration
-- versions must run without gaps, so this branch carries it until that one is merged.
-- The integrator drops this file when the real 0005 arrives.
SELECT 1;
