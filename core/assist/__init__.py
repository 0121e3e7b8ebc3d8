"""Help for agents answering a ticket: similar resolved tickets and a suggested reply."""
