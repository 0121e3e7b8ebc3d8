"""the agent's workspace: tags, canned replies, blocked senders, saved views, read marks, presence,
agents away

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 07:05:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKey:
    return sa.ForeignKey(f"{target}.id", ondelete=ondelete,
                         name=f"fk_{table}_{column}_{target}")


def upgrade() -> None:
    op.create_table(
        "ticket_tag",
        sa.Column("ticket_id", sa.Integer(), _fk("ticket_tag", "ticket_id", "ticket"), nullable=False),
        sa.Column("tag", sa.String(48), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "tag", name="pk_ticket_tag"),
    )
    op.create_index("ix_ticket_tag_tag", "ticket_tag", ["tag", "ticket_id"])
    op.create_table(
        "canned_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), _fk("canned_reply", "owner_id", "contact"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canned_reply"),
    )
    op.create_index("ix_canned_reply_owner_id", "canned_reply", ["owner_id"])
    op.create_table(
        "blocked_sender",
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("blocked_by_id", sa.Integer(),
                  _fk("blocked_sender", "blocked_by_id", "contact", "SET NULL"), nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("email", name="pk_blocked_sender"),
    )
    op.create_table(
        "saved_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), _fk("saved_view", "owner_id", "contact"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_saved_view"),
    )
    op.create_index("ix_saved_view_owner_id", "saved_view", ["owner_id"])
    op.create_table(
        "ticket_read",
        sa.Column("ticket_id", sa.Integer(), _fk("ticket_read", "ticket_id", "ticket"), nullable=False),
        sa.Column("contact_id", sa.Integer(), _fk("ticket_read", "contact_id", "contact"), nullable=False),
        sa.Column("last_message_id", sa.Integer(), nullable=False),
        sa.Column("read_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "contact_id", name="pk_ticket_read"),
    )
    op.create_table(
        "presence",
        sa.Column("ticket_id", sa.Integer(), _fk("presence", "ticket_id", "ticket"), nullable=False),
        sa.Column("contact_id", sa.Integer(), _fk("presence", "contact_id", "contact"), nullable=False),
        sa.Column("typing", sa.Boolean(), nullable=False),
        sa.Column("seen_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "contact_id", name="pk_presence"),
    )


def downgrade() -> None:
    for table in ("presence", "ticket_read", "saved_view", "blocked_sender", "canned_reply", "ticket_tag"):
        op.drop_table(table)
