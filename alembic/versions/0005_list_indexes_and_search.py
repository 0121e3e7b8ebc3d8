"""list indexes and full-text search

Indexes for the lists at 100,000 tickets (both databases), and on PostgreSQL a full-text
search document per ticket, kept up to date by triggers.

Why one document per ticket, not a GIN index on each message: a search must answer with
tickets. With a message index, a word found in 40,000 messages means 40,000 heap rows
read just to learn their ticket ids, and a word in most messages overflows work_mem into
a lossy bitmap whose recheck parses every message again (17 s for "the" on 1,000,000
messages, against 1.5 s for the LIKE scan it replaced). With a document per ticket, a
search reads at most one row per ticket, and the words of a whole thread match together
("printer smoke" finds a ticket where each word is in another mail).

The document holds the subject, the summary and every message but internal notes
('simple' configuration, see core/queries.py). A tsvector holds at most 1 MB: each
message adds the words of its first 100,000 characters (always under 1 MB), and a
thread's document stops growing before it would pass the limit, so no mail can fail to
be stored because of search. Messages are deleted only with their ticket (the document
goes with it by cascade); a message changed in place rebuilds its ticket's document.

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
    ("ix_ticket_assignee_updated", "ticket", ["assignee_id", "updated_at", "id"]),  # an agent's own
    ("ix_ticket_skill_skill", "ticket_skill", ["skill", "ticket_id"]),  # the queue's skill filter
    ("ix_follower_contact_id", "follower", ["contact_id"]),          # a customer's followed tickets
)

SEARCH_DDL = r"""
CREATE TABLE ticket_search (
    ticket_id integer PRIMARY KEY REFERENCES ticket (id) ON DELETE CASCADE,
    document tsvector NOT NULL,
    document_bytes integer NOT NULL  -- an upper bound of the document's size, to stay under 1 MB
);

-- The searchable words of one text: its first 100,000 characters stay far below 1 MB of tsvector.
CREATE FUNCTION ticket_search_words(body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_tsvector('simple'::regconfig, left(body, 100000)) $$;

-- Rebuild one ticket's document from its subject, summary and messages (not internal notes).
CREATE FUNCTION ticket_search_rebuild(tid integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    doc tsvector;
    size integer;
    words tsvector;
    body text;
BEGIN
    SELECT ticket_search_words(subject || ' ' || summary) INTO doc FROM ticket WHERE id = tid;
    IF NOT FOUND THEN
        RETURN;  -- the ticket is being deleted
    END IF;
    size := pg_column_size(doc);
    FOR body IN SELECT visible_text FROM message WHERE ticket_id = tid AND direction <> 'note' ORDER BY id LOOP
        words := ticket_search_words(body);
        IF size + pg_column_size(words) < 1000000 THEN
            doc := doc || words;
            size := size + pg_column_size(words);
        END IF;
    END LOOP;
    INSERT INTO ticket_search (ticket_id, document, document_bytes) VALUES (tid, doc, size)
        ON CONFLICT (ticket_id) DO UPDATE SET document = excluded.document, document_bytes = excluded.document_bytes;
END $$;

CREATE FUNCTION ticket_search_on_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticket_search_rebuild(NEW.id);
    RETURN NULL;
END $$;

-- A new message adds its words (the common case: cheap); a changed one rebuilds its tickets' documents.
CREATE FUNCTION ticket_search_on_message() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    words tsvector;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.direction <> 'note' THEN
            words := ticket_search_words(NEW.visible_text);
            UPDATE ticket_search SET document = document || words,
                                     document_bytes = document_bytes + pg_column_size(words)
             WHERE ticket_id = NEW.ticket_id AND document_bytes + pg_column_size(words) < 1000000;
        END IF;
    ELSE
        PERFORM ticket_search_rebuild(NEW.ticket_id);
        IF OLD.ticket_id <> NEW.ticket_id THEN
            PERFORM ticket_search_rebuild(OLD.ticket_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ticket_search_new_ticket AFTER INSERT ON ticket
    FOR EACH ROW EXECUTE FUNCTION ticket_search_on_ticket();
CREATE TRIGGER ticket_search_ticket_text AFTER UPDATE OF subject, summary ON ticket
    FOR EACH ROW WHEN (OLD.subject IS DISTINCT FROM NEW.subject OR OLD.summary IS DISTINCT FROM NEW.summary)
    EXECUTE FUNCTION ticket_search_on_ticket();
CREATE TRIGGER ticket_search_new_message AFTER INSERT ON message
    FOR EACH ROW EXECUTE FUNCTION ticket_search_on_message();
CREATE TRIGGER ticket_search_changed_message AFTER UPDATE OF ticket_id, direction, visible_text ON message
    FOR EACH ROW EXECUTE FUNCTION ticket_search_on_message();
"""

# Every existing ticket's document in one statement (the rebuild function per ticket would be as
# correct but slower). The few threads of 100,000 characters or more, which one to_tsvector call
# might turn into more than 1 MB, are built message by message by the function, with its size check.
SEARCH_BACKFILL = r"""
INSERT INTO ticket_search (ticket_id, document, document_bytes)
SELECT id, document, pg_column_size(document) FROM (
    SELECT t.id, ticket_search_words(t.subject || ' ' || t.summary || ' ' || coalesce(m.body, '')) AS document
      FROM ticket t
      LEFT JOIN LATERAL (SELECT string_agg(visible_text, ' ' ORDER BY id) AS body
                           FROM message WHERE ticket_id = t.id AND direction <> 'note') m ON true
     WHERE length(t.subject) + length(t.summary) + coalesce(length(m.body), 0) < 99000
) built;
SELECT ticket_search_rebuild(t.id) FROM ticket t
 WHERE NOT EXISTS (SELECT FROM ticket_search s WHERE s.ticket_id = t.id);
"""


def upgrade() -> None:
    for name, table, columns in LIST_INDEXES:
        op.create_index(name, table, columns)
    op.drop_index("ix_ticket_assignee_id", table_name="ticket")  # the first column of ix_ticket_assignee_updated
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite, the small default, searches with LIKE (core/queries.py)
    op.execute(SEARCH_DDL)
    op.execute(SEARCH_BACKFILL)
    # Every new message rewrites its ticket's document, so the GIN index takes a few hundred entries
    # per mail. Its pending list (where they wait, unsorted, to be merged) is read by every search and
    # weighed by the planner: at the default 4 MB a search for "refund" went from a 38 ms bitmap scan
    # to a 423 ms scan of every document. 256 kB keeps both small at the same cost per mail.
    op.execute("CREATE INDEX ix_ticket_search_document ON ticket_search USING gin (document)"
               " WITH (gin_pending_list_limit = 256)")
    # One dead row version per stored message: vacuum after 2% of the tickets changed, not 20%.
    op.execute("ALTER TABLE ticket_search SET (autovacuum_vacuum_scale_factor = 0.02)")
    op.execute("ANALYZE ticket_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE ticket_search")
        for function in ("ticket_search_on_message", "ticket_search_on_ticket"):
            op.execute(f"DROP FUNCTION {function}() CASCADE")
        op.execute("DROP FUNCTION ticket_search_rebuild(integer)")
        op.execute("DROP FUNCTION ticket_search_words(text)")
    op.create_index("ix_ticket_assignee_id", "ticket", ["assignee_id"])
    for name, table, _ in reversed(LIST_INDEXES):
        op.drop_index(name, table_name=table)
