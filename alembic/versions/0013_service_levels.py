"""service levels, reminders

ticket gains its service-level columns (due times in business hours, the nearest due time the
queue sorts by, the scheduler's next check) and waiting_until (a pending reminder);
sla_policy keeps the service levels an admin set in the browser; sla_escalation records each
escalation mail once; satisfaction keeps each requester's answer to the resolution mail's
rating links; skill is the admins' managed list of skills; contact.away keeps an agent out of
automatic assignment; mailbox_health keeps each IMAP mailbox's last poll and error.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 07:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

STAMPS = ("first_response_due_at", "resolution_due_at", "first_responded_at", "resolved_at", "sla_due_at",
          "sla_warn_at", "sla_next_check_at", "sla_checked_at", "waiting_until")
INDEXED = ("sla_due_at", "sla_next_check_at", "sla_checked_at", "waiting_until")


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        for column in STAMPS:
            batch.add_column(sa.Column(column, sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sla_breached", sa.Boolean(), nullable=False, server_default=sa.false()))
    for column in INDEXED:
        op.create_index(f"ix_ticket_{column}", "ticket", [column])
    op.create_table(
        "sla_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by_id"], ["contact.id"], ondelete="SET NULL",
                                name="fk_sla_policy_updated_by_id_contact"),
        sa.PrimaryKeyConstraint("id", name="pk_sla_policy"),
    )
    op.create_table(
        "sla_escalation",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ondelete="CASCADE",
                                name="fk_sla_escalation_ticket_id_ticket"),
        sa.PrimaryKeyConstraint("ticket_id", "target", "stage", "cycle", name="pk_sla_escalation"),
    )
    op.create_table(
        "satisfaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("score IN ('good', 'bad')", name="ck_satisfaction_score"),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ondelete="CASCADE",
                                name="fk_satisfaction_ticket_id_ticket"),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"], ondelete="CASCADE",
                                name="fk_satisfaction_contact_id_contact"),
        sa.PrimaryKeyConstraint("id", name="pk_satisfaction"),
    )
    op.create_index("ix_satisfaction_ticket_id_contact_id", "satisfaction", ["ticket_id", "contact_id"], unique=True)
    op.create_index("ix_satisfaction_updated_at", "satisfaction", ["updated_at"])
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("away", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "skill",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_skill"),
    )
    # The skills in use become the managed list.
    op.execute("INSERT INTO skill (name, created_at) SELECT skill, CURRENT_TIMESTAMP FROM "
               "(SELECT skill FROM agent_skill UNION SELECT skill FROM ticket_skill) AS used")
    op.create_table(
        "mailbox_health",
        sa.Column("mailbox", sa.String(1000), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", name="pk_mailbox_health"),
    )


def downgrade() -> None:
    op.drop_table("mailbox_health")
    op.drop_table("skill")
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("away")
    op.drop_table("satisfaction")
    op.drop_table("sla_escalation")
    op.drop_table("sla_policy")
    for column in INDEXED:
        op.drop_index(f"ix_ticket_{column}", table_name="ticket")
    with op.batch_alter_table("ticket") as batch:
        for column in (*STAMPS, "sla_breached"):
            batch.drop_column(column)
