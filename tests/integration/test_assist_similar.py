"""Similar resolved tickets, on SQLite (term overlap) and PostgreSQL (full-text rank)."""
from __future__ import annotations

from core import workflow
from core.assist.similar import similar_resolved
from core.models import Ticket

RESOLVED = [
    ("Printer P-300 shows error E-4711", "Our office printer P-300 stopped printing, the display shows error "
     "E-4711 and the LED blinks orange.", "resolved", "Reset the P-300 fuser unit: hold the power button for 10 "
     "seconds, then update the firmware to 2.5.0."),
    ("Printer jams on double-sided pages", "The printer on floor 3 jams when printing double-sided pages.",
     "closed", "Replaced the duplex roller of the printer."),
    ("VPN disconnects every hour", "SecureLink VPN drops the connection every hour since the update.",
     "resolved", "Reinstall SecureLink with the clean-install option."),
    ("Invoice charged twice", "My credit card was charged twice for the same invoice.", "resolved",
     "Refunded the second payment."),
    ("Printer error E-4711 again", "Printer P-300 shows error E-4711 with an orange LED.", "in_progress", ""),
    ("Printer error E-4711 no resolution", "Printer P-300 error E-4711, LED blinks orange.", "closed", ""),
]


def open_ticket(desk, subject: str, text: str, status: str = "new", resolution: str = "") -> int:
    with desk.sessions() as s, s.begin():
        ticket = workflow.open_from_web(s, desk.settings, email="cara@example.org", name="Cara", subject=subject,
                                        description=text)
        ticket.status, ticket.resolution = status, resolution
        s.flush()
        return ticket.id


def similar_to(desk, ticket_id: int):
    with desk.sessions() as s:
        return similar_resolved(s, s.get(Ticket, ticket_id))


def test_the_most_similar_resolved_tickets_come_first_with_their_resolution(desk):
    ids = [open_ticket(desk, *row) for row in RESOLVED]
    new = open_ticket(desk, "Printer P-300 error E-4711", "Since this morning our P-300 printer shows error E-4711 "
                      "and its LED blinks orange. What can we do?")
    found = similar_to(desk, new)
    assert 1 <= len(found) <= 3
    assert found[0].id == ids[0]
    assert found[0].resolution.startswith("Reset the P-300 fuser unit")
    assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)
    assert found[0].score > 0


def test_open_tickets_those_without_resolution_and_the_ticket_itself_are_never_listed(desk):
    ids = [open_ticket(desk, *row) for row in RESOLVED]
    found = {f.id for f in similar_to(desk, ids[4])}
    assert ids[4] not in found and ids[5] not in found
    resolved_self = similar_to(desk, ids[0])
    assert ids[0] not in {f.id for f in resolved_self}


def test_a_ticket_about_something_else_finds_nothing_unrelated(desk):
    for row in RESOLVED:
        open_ticket(desk, *row)
    new = open_ticket(desk, "Delivery address change", "Please send my parcel to my new flat in Geneva.")
    assert similar_to(desk, new) == []


def test_at_most_three_are_listed(desk):
    for n in range(5):
        open_ticket(desk, f"Printer jams tray {n}", "The printer jams on the paper tray every morning.", "resolved",
                    f"Cleaned tray {n}.")
    new = open_ticket(desk, "Printer jams", "Our printer jams on the paper tray.")
    assert len(similar_to(desk, new)) == 3


def test_a_reopened_ticket_leaves_the_list_and_comes_back_with_its_new_resolution(desk):
    solved = open_ticket(desk, *RESOLVED[0])
    new = open_ticket(desk, "Printer P-300 error E-4711", "Our P-300 printer shows error E-4711, LED orange.")
    assert solved in {f.id for f in similar_to(desk, new)}
    with desk.sessions() as s, s.begin():
        s.get(Ticket, solved).status = "in_progress"
    assert solved not in {f.id for f in similar_to(desk, new)}
    with desk.sessions() as s, s.begin():
        ticket = s.get(Ticket, solved)
        ticket.status, ticket.resolution = "closed", "Replaced the P-300 fuser unit."
    found = similar_to(desk, new)
    assert found[0].id == solved and found[0].resolution == "Replaced the P-300 fuser unit."


def test_only_the_first_message_counts_not_later_replies(desk):
    vpn = open_ticket(desk, "VPN disconnects every hour", "SecureLink VPN drops the connection every hour.",
                      "resolved", "Reinstall SecureLink.")
    with desk.sessions() as s, s.begin():
        ticket = s.get(Ticket, vpn)
        agent = workflow.contact_for(s, "agent@example.test", "Agent")
        workflow.reply_as_agent(s, desk.settings, ticket, agent, "Unrelated: printer P-300 error E-4711 orange LED.")
    new = open_ticket(desk, "Printer P-300 error E-4711", "Our P-300 printer shows error E-4711, LED orange.")
    assert vpn not in {f.id for f in similar_to(desk, new)}
