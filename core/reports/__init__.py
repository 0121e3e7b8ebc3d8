"""Reports over a chosen period: per agent, service-level compliance, backlog by age, categories
(figures.py), and the ticket list as CSV, streamed (export.py)."""
