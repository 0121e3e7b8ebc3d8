"""Skill names in different word forms compare equal; different words do not."""
import pytest

from core.workspace.skills import skill_stem


@pytest.mark.parametrize("a, b", [("network", "networking"), ("printer", "printers"), ("printer", "printing"),
                                  ("billing", "bill"), ("email", "E-mails"), ("security", "securities"),
                                  ("install", "installation"), ("invoice", "invoices"), ("cache", "caches"),
                                  ("database", "databases"), ("status", "statuses"), ("box", "boxes")])
def test_word_forms_share_a_stem(a, b):
    assert skill_stem(a) == skill_stem(b)


@pytest.mark.parametrize("a, b", [("network", "printer"), ("access", "acces-control"), ("vpn", "vpns-x"),
                                  ("ring", "r")])
def test_different_words_keep_different_stems(a, b):
    assert skill_stem(a) != skill_stem(b)


def test_double_s_is_not_a_plural():
    assert skill_stem("access") == "access" and skill_stem("business") == "business"


def test_configured_synonyms_join_their_group_in_any_word_form():
    from core.workspace.skills import related_stems
    groups = ("network = LAN, wifi", "billing = invoices")
    stems = lambda *words: {skill_stem(w) for w in words}  # noqa: E731
    assert related_stems(["networking"], groups) == stems("network", "lan", "wifi")
    assert related_stems(["invoice"], groups) == stems("invoices", "billing")
    assert related_stems(["printer"], groups) == stems("printers")


def test_synonyms_are_read_from_config_toml(tmp_path):
    from core.config import load_settings
    path = tmp_path / "config.toml"
    path.write_text('[assignment]\nskill_synonyms = ["network = lan, wifi"]\n')
    assert load_settings(path, environ={}).assignment.skill_synonyms == ("network = lan, wifi",)
    assert load_settings(path, environ={"POSTDESK_ASSIGNMENT__SKILL_SYNONYMS": "a = b"}) \
        .assignment.skill_synonyms == ("a = b",)
