"""similar resolved tickets (PostgreSQL)

One full-text document per resolved ticket, for "similar resolved tickets" on the agent's page:
its subject (weight A), summary (B) and first message (D), kept by triggers while the ticket is
resolved or closed with a resolution, GIN-indexed. SQLite compares term overlap instead
(core/assist/similar.py).

Why a table of its own, not ticket_search: that document holds the whole thread, and ranking
the tickets sharing a word with this one meant parsing each one's subject, summary and first
message at query time: 23 s for a ticket page at 100,000 tickets (bench/similar.py). With the
three texts parsed once, when a ticket is resolved, a page ranks stored documents only.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 07:30:00
"""
from alembic import op


revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None

SIMILAR_DDL = r"""
CREATE TABLE ticket_similar (
    ticket_id integer PRIMARY KEY REFERENCES ticket (id) ON DELETE CASCADE,
    document tsvector NOT NULL
);

-- Rebuild one ticket's row: present while it is resolved or closed with a resolution, else absent.
CREATE FUNCTION ticket_similar_rebuild(tid integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    doc tsvector;
BEGIN
    SELECT setweight(to_tsvector('simple'::regconfig, left(t.subject, 100000)), 'A')
        || setweight(to_tsvector('simple'::regconfig, left(t.summary, 100000)), 'B')
        || setweight(to_tsvector('simple'::regconfig, left(coalesce(
               (SELECT coalesce(nullif(m.visible_text, ''), m.body_text) FROM message m
                 WHERE m.ticket_id = t.id AND m.direction <> 'note' ORDER BY m.id LIMIT 1), ''), 100000)), 'D')
      INTO doc
      FROM ticket t
     WHERE t.id = tid AND t.status IN ('resolved', 'closed') AND length(btrim(t.resolution)) > 0;
    IF doc IS NULL THEN
        DELETE FROM ticket_similar WHERE ticket_id = tid;
    ELSE
        INSERT INTO ticket_similar (ticket_id, document) VALUES (tid, doc)
            ON CONFLICT (ticket_id) DO UPDATE SET document = excluded.document;
    END IF;
END $$;

CREATE FUNCTION ticket_similar_on_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticket_similar_rebuild(NEW.id);
    RETURN NULL;
END $$;

-- Only a resolved ticket's messages matter (the first one, or a first one imported late).
CREATE FUNCTION ticket_similar_on_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM ticket WHERE id = NEW.ticket_id AND status IN ('resolved', 'closed')) THEN
        PERFORM ticket_similar_rebuild(NEW.ticket_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ticket_similar_new_ticket AFTER INSERT ON ticket
    FOR EACH ROW WHEN (NEW.status IN ('resolved', 'closed'))
    EXECUTE FUNCTION ticket_similar_on_ticket();
CREATE TRIGGER ticket_similar_ticket_text AFTER UPDATE OF status, resolution, subject, summary ON ticket
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.resolution IS DISTINCT FROM NEW.resolution
                       OR OLD.subject IS DISTINCT FROM NEW.subject OR OLD.summary IS DISTINCT FROM NEW.summary)
    EXECUTE FUNCTION ticket_similar_on_ticket();
CREATE TRIGGER ticket_similar_message AFTER INSERT OR UPDATE OF visible_text, body_text, direction ON message
    FOR EACH ROW EXECUTE FUNCTION ticket_similar_on_message();
"""

SIMILAR_BACKFILL = r"""
INSERT INTO ticket_similar (ticket_id, document)
SELECT t.id,
       setweight(to_tsvector('simple'::regconfig, left(t.subject, 100000)), 'A')
    || setweight(to_tsvector('simple'::regconfig, left(t.summary, 100000)), 'B')
    || setweight(to_tsvector('simple'::regconfig, left(coalesce(
           (SELECT coalesce(nullif(m.visible_text, ''), m.body_text) FROM message m
             WHERE m.ticket_id = t.id AND m.direction <> 'note' ORDER BY m.id LIMIT 1), ''), 100000)), 'D')
  FROM ticket t
 WHERE t.status IN ('resolved', 'closed') AND length(btrim(t.resolution)) > 0;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite compares term overlap in Python (core/assist/similar.py)
    op.execute(SIMILAR_DDL)
    op.execute(SIMILAR_BACKFILL)
    op.execute("CREATE INDEX ix_ticket_similar_document ON ticket_similar USING gin (document)"
               " WITH (gin_pending_list_limit = 256)")
    # The query picks its words by how common they are: pg_stats.most_common_elems of the documents.
    op.execute("ANALYZE ticket_similar")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE ticket_similar")
        for function in ("ticket_similar_on_message", "ticket_similar_on_ticket"):
            op.execute(f"DROP FUNCTION {function}() CASCADE")
        op.execute("DROP FUNCTION ticket_similar_rebuild(integer)")
