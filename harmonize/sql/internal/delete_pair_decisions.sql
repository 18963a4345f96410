-- delete_pair_decisions: forgets every decision on one pair (the review curve's arms each start
-- from none). params: source, target
DELETE FROM decisions WHERE source_site = $source AND target_site = $target;
