"""The hardening keys: [metrics], [smtp] max_inflight_bytes / data_timeout_seconds, [ai] concurrency,
breaker and classify keys: read from config.toml and POSTDESK_* variables, refused when wrong."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.config import AiSettings, MetricsSettings, SmtpSettings, load_settings
from core.errors import ConfigError


def test_defaults_match_config_toml_and_env_overrides_apply():
    shipped = load_settings(Path(__file__).resolve().parents[2] / "config.toml", environ={})
    assert shipped.metrics == MetricsSettings() and shipped.smtp == SmtpSettings() and shipped.ai == AiSettings()
    assert shipped.metrics.allowed_networks == ("127.0.0.0/8", "::1/128")
    assert shipped.smtp.max_inflight_bytes == 100 * 1024 * 1024 and shipped.smtp.data_timeout_seconds == 30
    assert (shipped.ai.concurrency, shipped.ai.breaker_failures, shipped.ai.classify_anonymous) == (4, 3, "offline")
    env = load_settings(environ={"POSTDESK_METRICS__TOKEN": "t0k", "POSTDESK_METRICS__ALLOWED_NETWORKS": "10.0.0.0/8",
                                 "POSTDESK_SMTP__MAX_INFLIGHT_BYTES": "1000", "POSTDESK_AI__CONCURRENCY": "2"})
    assert env.metrics.token == "t0k" and env.metrics.allowed_networks == ("10.0.0.0/8",)
    assert env.smtp.max_inflight_bytes == 1000 and env.ai.concurrency == 2
    assert "t0k" not in repr(env)


@pytest.mark.parametrize("key, value", [("POSTDESK_AI__CLASSIFY_ANONYMOUS", "everyone"),
                                        ("POSTDESK_METRICS__ALLOWED_NETWORKS", "not-a-network"),
                                        ("POSTDESK_AI__CONCURRENCY", "0"),
                                        ("POSTDESK_SMTP__DATA_TIMEOUT_SECONDS", "0")])
def test_wrong_values_are_refused_with_the_key_named(key, value):
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={key: value})
    assert key.split("__")[1].lower() in str(refused.value) or "networks" in str(refused.value)
