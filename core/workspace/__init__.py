"""The agent's workspace: what support teams use all day around the thread itself.

tags.py (free tags on tickets), canned.py (reply templates with placeholders), bulk.py (one change
on many tickets), split.py (messages to a new ticket), spam.py (blocked senders, held in
quarantine), saved.py (built-in and personal queue views), presence.py (who is viewing or typing,
what each agent has read), skills.py (related skill names). Merging lives in core/merge.py.
"""
