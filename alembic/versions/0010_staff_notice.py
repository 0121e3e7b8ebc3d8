"""staff notices: what staff should know about a ticket, and the (digest) mail telling them

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 07:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contact.id", ondelete="CASCADE",
                                                            name="fk_staff_notice_contact_id_contact"),
                  nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("ticket.id", ondelete="CASCADE",
                                                           name="fk_staff_notice_ticket_id_ticket"),
                  nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), sa.ForeignKey("outbox.id", ondelete="SET NULL",
                                                           name="fk_staff_notice_outbox_id_outbox"),
                  nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_notice"),
    )
    op.create_index("ix_staff_notice_contact_outbox", "staff_notice", ["contact_id", "outbox_id"])
    op.create_index("ix_staff_notice_ticket_id", "staff_notice", ["ticket_id"])
    op.create_index("ix_staff_notice_outbox_id", "staff_notice", ["outbox_id"])


def downgrade() -> None:
    op.drop_table("staff_notice")
