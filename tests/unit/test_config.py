import re
from pathlib import Path

import pytest

from core.config import load_settings, with_secret_key
from core.errors import ConfigError


def test_defaults_need_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.database.url == "sqlite:///var/postdesk.db"
    assert (s.smtp.host, s.smtp.port, s.smtp.addresses) == ("127.0.0.1", 2525, ("support@example.test",))
    assert s.smtp.max_message_bytes == 25 * 1024 * 1024
    assert s.outbound.outbox_dir == "var/outbox" and s.from_address == "support@example.test"
    assert s.base_url == "http://127.0.0.1:8000"
    assert s.ai_provider == "offline"


def test_env_overrides_file_with_typed_values(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[smtp]\nport = 2600\n[web]\nbase_url = "https://help.example.test/"\n')
    s = load_settings(cfg, environ={"POSTDESK_SMTP__PORT": "2526",
                                    "POSTDESK_SMTP__ADDRESSES": "a@example.test, b@example.test",
                                    "POSTDESK_OUTBOUND__STARTTLS": "true"})
    assert s.smtp.port == 2526
    assert s.smtp.addresses == ("a@example.test", "b@example.test")
    assert s.outbound.starttls is True and s.from_address == "a@example.test"
    assert s.base_url == "https://help.example.test"


def test_mistral_key_from_environment_switches_auto_provider():
    s = load_settings(environ={"MISTRAL_API_KEY": "k", "POSTDESK_CONFIG": str(Path(__file__).parents[2] / "config.toml")})
    assert s.ai.api_key == "k" and s.ai_provider == "mistral"


@pytest.mark.parametrize("environ, words", [
    ({"POSTDESK_SMTP__PORT": "twenty"}, "[smtp] port"),
    ({"POSTDESK_SMTP__PROT": "1"}, "unknown key"),
    ({"POSTDESK_AI__PROVIDER": "openai"}, "provider"),
    ({"POSTDESK_NOPE__X": "1"}, "unknown config section"),
])
def test_bad_values_are_named_in_a_config_error(environ, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_settings(environ=environ)


def test_repo_config_file_documents_exactly_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    documented = load_settings(Path(__file__).parents[2] / "config.toml", environ={})
    assert documented == load_settings(environ={})


def test_secret_key_is_generated_once_and_kept(tmp_path):
    s = load_settings(environ={"POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var")})
    first = with_secret_key(s).web.secret_key
    assert len(first) >= 32 and with_secret_key(s).web.secret_key == first
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o077 == 0


REPO_CONFIG = Path(__file__).parents[2] / "config.toml"


def _load(tmp_path, toml: str = "", environ: dict | None = None):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    return load_settings(cfg, environ=environ or {})


def test_imap_table_stays_the_first_mailbox_under_its_old_env_names(tmp_path):
    s = _load(tmp_path, '[imap]\nhost = "imap.example.test"\nusername = "desk"\n',
              {"POSTDESK_IMAP__PORT": "143", "POSTDESK_IMAP__SSL": "false", "POSTDESK_IMAP__PASSWORD": "pw"})
    assert (s.imap.host, s.imap.port, s.imap.ssl, s.imap.username, s.imap.password) == (
        "imap.example.test", 143, False, "desk", "pw")
    [first] = s.imap.enabled_mailboxes
    assert first.name == "" and first.section == "imap" and first.key == "desk@imap.example.test/INBOX"
    assert first.port == 143 and first.password == "pw"


def test_named_mailboxes_inherit_every_key_they_leave_out(tmp_path):
    s = _load(tmp_path, '[imap]\nhost = "imap.example.test"\nport = 143\nusername = "desk"\npassword = "pw"\n'
                        'after = "move:Done"\n'
                        '[imap.mailboxes.sales]\nusername = "sales"\npassword = "spw"\n'
                        '[imap.mailboxes.billing]\nfolder = "Billing"\npoll_seconds = 5\n')
    first, sales, billing = s.imap.enabled_mailboxes
    assert first.key == "desk@imap.example.test/INBOX"
    assert (sales.name, sales.section, sales.key) == ("sales", "imap.mailboxes.sales", "sales@imap.example.test/INBOX")
    assert (sales.port, sales.password, sales.after) == (143, "spw", "move:Done")
    assert (billing.key, billing.password, billing.poll_seconds) == ("desk@imap.example.test/Billing", "pw", 5)


def test_env_names_a_mailbox_key_one_table_deeper(tmp_path):
    s = _load(tmp_path, '[imap.mailboxes.sales]\nhost = "imap.example.test"\nusername = "sales"\n',
              {"POSTDESK_IMAP__MAILBOXES__SALES__PASSWORD": "from-env",
               "POSTDESK_IMAP__MAILBOXES__SUPPORT_DE__HOST": "imap.example.de",
               "POSTDESK_IMAP__MAILBOXES__SUPPORT_DE__POLL_SECONDS": "30"})
    assert not s.imap.host  # [imap] itself stays off
    sales, support_de = s.imap.enabled_mailboxes
    assert (sales.username, sales.password) == ("sales", "from-env")
    assert (support_de.name, support_de.host, support_de.poll_seconds) == ("support_de", "imap.example.de", 30)


def test_a_mailbox_with_an_empty_host_is_not_polled(tmp_path):
    s = _load(tmp_path, '[imap]\nhost = "imap.example.test"\nusername = "desk"\n'
                        '[imap.mailboxes.old]\nusername = "old"\nhost = ""\n')
    assert [m.key for m in s.imap.enabled_mailboxes] == ["desk@imap.example.test/INBOX"]
    assert len(s.imap.mailboxes) == 1


def test_passwords_stay_out_of_the_settings_repr(tmp_path):
    s = _load(tmp_path, environ={"POSTDESK_IMAP__PASSWORD": "hunter2", "POSTDESK_IMAP__MAILBOXES__B__PASSWORD": "x7q"})
    assert "hunter2" not in repr(s) and "x7q" not in repr(s)


@pytest.mark.parametrize("toml, environ, words", [
    ('[imap]\nhost = "h"\nafter = "archive"\n', {}, "[imap] after must be"),
    ('[imap.mailboxes.sales]\nhost = "h"\nafter = "purge"\n', {}, "[imap.mailboxes.sales] after must be"),
    ('[imap.mailboxes.sales]\nhost = "h"\nfolder = "Sales"\nafter = "move:Sales"\n', {},
     "[imap.mailboxes.sales] after moves mails into 'Sales'"),
    ('[imap]\nhost = "h"\nafter = "move"\nfolder = "Postdesk"\n', {}, "[imap] after moves mails into 'Postdesk'"),
    ('[imap]\nhost = "h"\nusername = "u"\n[imap.mailboxes.again]\nport = 143\n', {},
     "[imap.mailboxes.again] polls u@h/INBOX, which [imap] polls already"),
    ('[imap.mailboxes.a]\nhost = "H"\nusername = "U"\nfolder = "inbox"\n[imap.mailboxes.b]\nhost = "h"\nusername = "u"\n',
     {}, "[imap.mailboxes.b] polls u@h/INBOX, which [imap.mailboxes.a] polls already"),
    ('[imap.mailboxes.Sales]\nhost = "h"\n', {}, "[imap.mailboxes.Sales]: a mailbox name is lower-case"),
    ('[imap.mailboxes.sales]\nhots = "h"\n', {}, "[imap.mailboxes.sales] unknown key(s): hots"),
    ('[imap.mailboxes.sales]\nname = "x"\n', {}, "[imap.mailboxes.sales] unknown key(s): name"),
    ('[imap]\nname = "x"\n', {}, "[imap] unknown key(s): name"),
    ('[imap.mailboxes.sales]\nport = "imap"\n', {}, "[imap.mailboxes.sales] port: expected a number"),
    ('[imap.mailboxes.sales]\nhost = "h"\npoll_seconds = 0\n', {}, "[imap.mailboxes.sales] poll_seconds must be at least 1"),
    ('[imap]\nmailboxes = "sales"\n', {}, "[imap] mailboxes must be tables"),
    ("", {"POSTDESK_IMAP__MAILBOXES": "sales"}, "[imap] mailboxes must be tables"),
    ("", {"POSTDESK_IMAP__MAILBOXES__SALES": "h"}, "[imap] mailboxes must be tables"),
    ('[imap.mailboxes.sales]\nhost = "h"\n', {"POSTDESK_IMAP__MAILBOXES": "x"}, "imap.mailboxes is a table of keys"),
    ("", {"POSTDESK_SMTP__PORT__X": "1"}, "[smtp] port: expected a number"),
])
def test_bad_mailboxes_are_named_in_a_config_error(tmp_path, toml, environ, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        _load(tmp_path, toml, environ)


def test_disabled_first_mailbox_is_not_checked_for_what_only_polling_needs(tmp_path):
    s = _load(tmp_path, '[imap]\nafter = "move:INBOX"\n')  # host empty: accepted as before
    assert s.imap.enabled_mailboxes == ()


def test_commented_mailbox_example_in_config_toml_is_valid(tmp_path):
    text = REPO_CONFIG.read_text()
    example = text[text.index("# [imap.mailboxes.sales]"):text.index("\n\n[intake]")]
    uncommented = "\n".join(line.removeprefix("#").removeprefix(" ") for line in example.splitlines())
    s = _load(tmp_path, '[imap]\nhost = "imap.example.test"\n' + uncommented + "\n")
    names = [(m.name, m.key) for m in s.imap.enabled_mailboxes]
    assert names == [("", "@imap.example.test/INBOX"), ("sales", "sales@example.test@imap.example.test/INBOX"),
                     ("billing", "billing@imap.billing.example.test/Support")]


def test_outbound_delivery_keys_have_defaults_and_refuse_nonsense():
    from core.config import load_settings as load
    from core.errors import ConfigError as Refused

    cfg = load(environ={}).outbound
    assert (cfg.connections, cfg.lease_seconds, cfg.max_attachment_bytes, cfg.coalesce_seconds) == \
        (2, 30.0, 10 * 1024 * 1024, 60.0)
    assert load(environ={"POSTDESK_OUTBOUND__CONNECTIONS": "4"}).outbound.connections == 4
    for key in ("CONNECTIONS", "LEASE_SECONDS"):
        with pytest.raises(Refused, match=r"\[outbound\]"):
            load(environ={f"POSTDESK_OUTBOUND__{key}": "0"})
