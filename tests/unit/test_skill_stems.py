"""Skill names in different word forms compare equal; different words do not."""
import pytest

from core.workspace.skills import skill_stem


@pytest.mark.parametrize("a, b", [("network", "networking"), ("printer", "printers"), ("printer", "printing"),
                                  ("billing", "bill"), ("email", "E-mails"), ("security", "securities"),
                                  ("install", "installation")])
def test_word_forms_share_a_stem(a, b):
    assert skill_stem(a) == skill_stem(b)


@pytest.mark.parametrize("a, b", [("network", "printer"), ("access", "acces-control"), ("vpn", "vpns-x"),
                                  ("ring", "r")])
def test_different_words_keep_different_stems(a, b):
    assert skill_stem(a) != skill_stem(b)


def test_double_s_is_not_a_plural():
    assert skill_stem("access") == "access" and skill_stem("business") == "business"
