"""list indexes

Indexes for the lists at 100,000 tickets (both databases): the default sort, the sort by age,
an agent's own tickets, the skill filter, a customer's followed tickets.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:00:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

LIST_INDEXES = (  # (name, table, columns): the same on both databases, declared in core/models.py
    ("ix_ticket_updated_id", "ticket", ["updated_at", "id"]),        # the default sort, newest first
    ("ix_ticket_created_id", "ticket", ["created_at", "id"]),        # sorted by age
    ("ix_ticket_assignee_updated", "ticket", ["assignee_id", "updated_at"]),  # "my tickets" of an agent
    ("ix_ticket_skill_skill", "ticket_skill", ["skill", "ticket_id"]),  # the queue's skill filter
    ("ix_follower_contact_id", "follower", ["contact_id"]),          # a customer's followed tickets
)


def upgrade() -> None:
    for name, table, columns in LIST_INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(LIST_INDEXES):
        op.drop_index(name, table_name=table)
