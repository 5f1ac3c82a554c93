-- Placeholder on the fuzzsec branch only: migration versions must run 1..n without gaps, and
-- 0005/0006 are another branch's. The integrator drops this file when merging those.
SELECT 1;
