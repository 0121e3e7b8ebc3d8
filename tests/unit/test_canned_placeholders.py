"""Canned replies fill exactly four placeholders by substitution: no template engine sees the body."""
from types import SimpleNamespace

from core.workspace.canned import fill_placeholders


def _ticket(name: str = "Ann", subject: str = "Printer") -> SimpleNamespace:
    return SimpleNamespace(id=42, subject=subject, requester=SimpleNamespace(name=name, email="ann@example.org"))


AGENT = SimpleNamespace(name="Dana", email="dana@example.test")


def test_the_four_placeholders_are_filled_with_or_without_spaces():
    body = "Hi {{customer.name}}, #{{ ticket.id }} “{{  ticket.subject }}” — {{ agent.name }}"
    assert fill_placeholders(body, _ticket(), AGENT) == "Hi Ann, #42 “Printer” — Dana"


def test_anything_else_stays_as_written():
    body = "{{ ticket.__class__ }} {% for x in y %}{{ config }}{% endfor %} {{ 7*7 }}"
    assert fill_placeholders(body, _ticket(), AGENT) == body


def test_filled_values_are_not_expanded_again():
    sneaky = _ticket(name="{{ agent.name }}", subject="{{ ticket.id }}")
    assert fill_placeholders("{{ customer.name }}/{{ ticket.subject }}", sneaky, AGENT) == \
        "{{ agent.name }}/{{ ticket.id }}"


def test_a_requester_without_a_name_is_greeted_by_address():
    assert fill_placeholders("Hi {{ customer.name }}", _ticket(name=""), AGENT) == "Hi ann@example.org"
