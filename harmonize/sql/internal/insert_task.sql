-- insert_task: records a site's binary task. params: site, label, positive
INSERT INTO site_tasks VALUES ($site, $label, $positive);
