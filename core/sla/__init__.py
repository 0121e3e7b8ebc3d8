"""Service levels: business-hour targets per priority, the clock of each ticket, escalations and
pending reminders. The public surface: policy (what is promised), tracking (the ticket's due
times), escalation and reminders (the scheduler's jobs)."""
