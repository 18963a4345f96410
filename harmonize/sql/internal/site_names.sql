-- site_names: every site's name, sorted. params: none
SELECT site FROM sites ORDER BY site;
