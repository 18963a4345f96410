-- site_task: a site's label column and positive value. params: site
SELECT label, positive FROM site_tasks WHERE site = $site;
