-- pair_rejections: one pair's rejected (source, target) pairs still standing: no later accept
-- or set of the same pair. params: source, target
SELECT DISTINCT r.source_code, r.target_code
FROM decisions AS r
WHERE r.source_site = $source AND r.target_site = $target AND r.decision = 'reject'
  AND r.target_code IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM decisions AS a
      WHERE a.source_site = r.source_site AND a.target_site = r.target_site
        AND a.source_code = r.source_code AND a.target_code = r.target_code
        AND a.decision IN ('accept', 'set') AND a.decided_at > r.decided_at
  )
ORDER BY r.source_code, r.target_code;
