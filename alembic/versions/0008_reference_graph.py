"""the reference graph, sender authentication, merged tickets

message_reference indexes every Message-ID a stored mail names (its own, In-Reply-To,
References), so a mail finds its ticket whichever mail of a conversation came first.
raw_mail.peer_ip/helo keep what SPF needs; held_until/waiting_for bound a reply's
wait for its original. message.auth_* keep the DKIM/SPF/DMARC verdict of an inbound mail; ticket.merged_into_id
points at the ticket a merged one continues on; raw_mail.message_id lets intake see that a
mail's parent is still in the spool, whatever key the spool deduplicates on.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 07:10:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_reference",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("message.id", ondelete="CASCADE",
                                                            name="fk_message_reference_message_id_message"),
                  nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("ticket.id", ondelete="CASCADE",
                                                           name="fk_message_reference_ticket_id_ticket"),
                  nullable=False),
        sa.Column("ref", sa.String(998), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_reference"),
    )
    op.create_index("ix_message_reference_ref", "message_reference", ["ref", "ticket_id"])
    op.create_index("ix_message_reference_message_id", "message_reference", ["message_id"])
    op.create_index("ix_message_reference_ticket_id", "message_reference", ["ticket_id"])
    with op.batch_alter_table("message") as batch:
        for column in ("auth_dkim", "auth_spf", "auth_dmarc"):
            batch.add_column(sa.Column(column, sa.String(16), nullable=False, server_default=""))
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_ticket_merged_into_id_ticket", "ticket", ["merged_into_id"], ["id"],
                                 ondelete="SET NULL")
    with op.batch_alter_table("raw_mail") as batch:
        batch.add_column(sa.Column("message_id", sa.String(998), nullable=True))
        batch.add_column(sa.Column("peer_ip", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("helo", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("held_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("waiting_for", sa.String(998), nullable=True))
        batch.add_column(sa.Column("approved_by", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_raw_mail_approved_by_contact", "contact", ["approved_by"], ["id"],
                                 ondelete="SET NULL")
    op.create_index("ix_raw_mail_message_id", "raw_mail", ["message_id"])
    op.create_index("ix_raw_mail_waiting_for", "raw_mail", ["waiting_for"])
    # Index what is stored already: every message's own Message-ID and the ones it names.
    bind = op.get_bind()
    rows = bind.execute(sa.text('SELECT id, ticket_id, message_id, in_reply_to, "references" FROM message '
                                "WHERE direction = 'in' OR message_id IS NOT NULL")).all()
    table = sa.table("message_reference", sa.column("message_id"), sa.column("ticket_id"),
                     sa.column("ref"), sa.column("kind"))
    batch = []
    for mid, ticket_id, own, parents, ancestors in rows:
        seen = set()
        for kind, refs in (("self", [own] if own else []), ("parent", (parents or "").split()),
                           ("ancestor", (ancestors or "").split())):
            for ref in refs:
                if ref and ref not in seen:
                    seen.add(ref)
                    batch.append({"message_id": mid, "ticket_id": ticket_id, "ref": ref[:998], "kind": kind})
        if len(batch) >= 5000:
            op.bulk_insert(table, batch)
            batch = []
    if batch:
        op.bulk_insert(table, batch)


def downgrade() -> None:
    op.drop_index("ix_raw_mail_waiting_for", table_name="raw_mail")
    op.drop_index("ix_raw_mail_message_id", table_name="raw_mail")
    with op.batch_alter_table("raw_mail") as batch:
        batch.drop_constraint("fk_raw_mail_approved_by_contact", type_="foreignkey")
        for column in ("approved_by", "waiting_for", "held_until", "helo", "peer_ip", "message_id"):
            batch.drop_column(column)
    with op.batch_alter_table("ticket") as batch:
        batch.drop_constraint("fk_ticket_merged_into_id_ticket", type_="foreignkey")
        batch.drop_column("merged_into_id")
    with op.batch_alter_table("message") as batch:
        for column in ("auth_dkim", "auth_spf", "auth_dmarc"):
            batch.drop_column(column)
    op.drop_table("message_reference")
