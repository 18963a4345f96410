-- code_event_counts: how many events one site has of each code. params: site
SELECT code, count(*)::BIGINT AS n_events
FROM events
WHERE site = $site
GROUP BY code;
