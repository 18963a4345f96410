"""``harmonize serve``: a review page in the browser over a workspace.

``pages`` reads what the page shows (pairs, rows in review order, coverage, target search),
``api`` checks and records decisions, ``app`` is the Starlette application, ``security`` the
token and loopback rules, ``server`` binds and runs it; ``static/`` holds the page itself
(plain HTML, CSS and JavaScript, no build step).
"""
