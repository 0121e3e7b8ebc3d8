"""tickets per status, kept by triggers (PostgreSQL)

The agent queue opens on every ticket with its matches per status; at 100,000 tickets
counting them read the whole (status, updated_at) index on each view (8.5 ms of
PostgreSQL time, the largest part of the queue's default page). Here triggers keep a
tally: each new, deleted or re-statused ticket appends a +1/-1 row. Appending, never
updating one row per status, so concurrent intake workers never wait on each other; the
readers sum the rows and fold them together once there are many (core/queries.py).
SQLite, the small default, keeps counting the tickets.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 17:40:00
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TALLY_DDL = r"""
CREATE TABLE ticket_status_tally (
    status varchar(16) NOT NULL,
    n bigint NOT NULL
);

CREATE FUNCTION ticket_status_tally_on_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO ticket_status_tally (status, n) VALUES (OLD.status, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO ticket_status_tally (status, n) VALUES (NEW.status, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ticket_status_tally_rows AFTER INSERT OR DELETE ON ticket
    FOR EACH ROW EXECUTE FUNCTION ticket_status_tally_on_change();
CREATE TRIGGER ticket_status_tally_status AFTER UPDATE OF status ON ticket
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION ticket_status_tally_on_change();

INSERT INTO ticket_status_tally (status, n) SELECT status, count(*) FROM ticket GROUP BY status;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TALLY_DDL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE ticket_status_tally")
        op.execute("DROP FUNCTION ticket_status_tally_on_change() CASCADE")
