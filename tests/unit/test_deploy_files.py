"""docker-compose.yml and the Dockerfile cannot be run here (no Docker engine), so their wiring is
checked by reading them: services, ports, and that every POSTDESK_* key exists in config.toml."""
import re
from pathlib import Path

import yaml

from core.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_three_services_and_publishes_the_ports():
    services = _compose()["services"]
    assert set(services) == {"postgres", "postdesk", "mailpit"}
    assert "healthcheck" in services["postgres"] and services["postgres"]["volumes"]
    assert services["postdesk"]["build"] == "."
    assert services["postdesk"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    published = {p.split(":")[0] for s in services.values() for p in s.get("ports", [])}
    assert published == {"2525", "8000", "8025"}


def test_compose_environment_names_real_config_keys_with_valid_values():
    env = _compose()["services"]["postdesk"]["environment"]
    keys = {k for k in env if k.startswith("POSTDESK_")}
    assert keys, "compose configures Postdesk through POSTDESK_* variables"
    concrete = {k: str(v) for k, v in env.items() if k.startswith("POSTDESK_")}
    settings = load_settings(ROOT / "config.toml", environ=concrete)  # unknown keys raise ConfigError
    assert settings.outbound.host == "mailpit" and settings.database.url.startswith("postgresql://")
    assert str(settings.smtp.port) in {p.split(":")[1] for p in _compose()["services"]["postdesk"]["ports"]}
    assert str(settings.web.port) in {p.split(":")[1] for p in _compose()["services"]["postdesk"]["ports"]}
    mailpit_smtp = 1025  # mailpit's SMTP port inside the compose network
    assert settings.outbound.port == mailpit_smtp


def test_dockerfile_builds_a_non_root_image_that_serves():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert '"postdesk", "serve"' in text
    for folder in ("core", "ingest", "portal", "postdesk", "templates", "alembic"):
        assert re.search(rf"^COPY {folder} ", text, re.M), folder
    env_keys = re.findall(r"(POSTDESK_\w+)=", text)
    load_settings(ROOT / "config.toml", environ={k: "0.0.0.0" for k in env_keys})
