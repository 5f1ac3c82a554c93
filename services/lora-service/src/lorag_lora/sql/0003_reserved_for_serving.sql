-- Reserved: the serving branch's 0003 (API keys) takes this number. This placeholder only keeps
-- versions gapless on the finetune branch; DELETE IT when merging the serving branch.
SELECT 1;
