"""indexes for the queue's counts and the staff list

At 100,000 tickets the queue's matches per status were counted by reading every ticket:
20 ms for "priority high or critical, category billing" (0.8 ms as an index-only scan of
(category, priority, status)), 16 ms for the API's total of one priority and category
(0.13 ms). A priority alone is counted from (priority, status). Tickets needing a skill
were counted by hashing all 100,000 tickets against the skill's ids (21 ms); (id, status)
lets PostgreSQL merge both indexes without reading a ticket row (7 ms). The staff list (the
assignee choices on every queue and ticket page) read all 25,000 contacts for its 21
agents (2.3 ms); (role, email) finds them in order.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 17:00:00
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

INDEXES = (  # (name, table, columns): declared in core/models.py as well
    ("ix_ticket_category_priority_status", "ticket", ["category", "priority", "status"]),
    ("ix_ticket_priority_status", "ticket", ["priority", "status"]),
    ("ix_ticket_id_status", "ticket", ["id", "status"]),
    ("ix_contact_role_email", "contact", ["role", "email"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
