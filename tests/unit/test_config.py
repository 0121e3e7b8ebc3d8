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
