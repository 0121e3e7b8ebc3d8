"""recognised automatic mail, reused Message-IDs

automatic_mail records every mail the classification step found automatic (auto-reply,
delivery or feedback report, provider notification, our own mail back) with its evidence and
the ticket it was attached to, or none: then admins find it there, its bytes in raw_mail.
raw_mail.reuses_message_id_of marks a different mail stored under a Message-ID seen before.

Revision ID: 0009
Revises: 0014 (0008 when written; re-chained after merging main)
Create Date: 2026-12-02 07:20:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automatic_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("raw_mail_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("from_address", sa.String(998), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("original_message_id", sa.String(998), nullable=True),
        sa.Column("addresses", sa.Text(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["raw_mail_id"], ["raw_mail.id"], ondelete="CASCADE",
                                name="fk_automatic_mail_raw_mail_id_raw_mail"),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ondelete="SET NULL",
                                name="fk_automatic_mail_ticket_id_ticket"),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"], ondelete="SET NULL",
                                name="fk_automatic_mail_message_id_message"),
        sa.PrimaryKeyConstraint("id", name="pk_automatic_mail"),
        sa.UniqueConstraint("raw_mail_id", name="uq_automatic_mail_raw_mail_id"),
    )
    op.create_index("ix_automatic_mail_kind", "automatic_mail", ["kind"])
    op.create_index("ix_automatic_mail_ticket_id", "automatic_mail", ["ticket_id"])
    with op.batch_alter_table("raw_mail") as batch:
        batch.add_column(sa.Column("reuses_message_id_of", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raw_mail") as batch:
        batch.drop_column("reuses_message_id_of")
    op.drop_index("ix_automatic_mail_ticket_id", table_name="automatic_mail")
    op.drop_index("ix_automatic_mail_kind", table_name="automatic_mail")
    op.drop_table("automatic_mail")
