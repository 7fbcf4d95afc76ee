"""SMTP settings and the report message (no server here: see tests/integration/test_reports.py)."""

from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import report_mail
from ansible_collections.rocm.madengine.plugins.module_utils.errors import ConfigError

SECRET = "s3cr3t-Pa55"


def test_settings_from_the_environment() -> None:
    env = {
        "MADENGINE_SMTP_HOST": "mail.example",
        "MADENGINE_SMTP_USER": "bot@example.org",
        "MADENGINE_SMTP_PASSWORD": SECRET,
        "MADENGINE_SMTP_TO": "a@example.org, b@example.org",
    }
    settings = report_mail.load_settings(env)
    assert (settings.host, settings.port, settings.starttls, settings.implicit_tls) == (
        "mail.example",
        587,
        True,
        False,
    )
    assert settings.recipients == ["a@example.org", "b@example.org"] and settings.sender == "bot@example.org"
    assert SECRET not in repr(settings)
    implicit = report_mail.load_settings({**env, "MADENGINE_SMTP_SSL": "1"}, recipients=["c@example.org"])
    assert (implicit.port, implicit.implicit_tls, implicit.starttls, implicit.recipients) == (
        465,
        True,
        False,
        ["c@example.org"],
    )


def test_missing_settings_name_what_to_set() -> None:
    with pytest.raises(ConfigError, match="MADENGINE_SMTP_HOST"):
        report_mail.load_settings({})
    with pytest.raises(ConfigError, match="MADENGINE_SMTP_TO"):
        report_mail.load_settings({"MADENGINE_SMTP_HOST": "h"})
    with pytest.raises(ConfigError, match="not a boolean"):
        report_mail.load_settings(
            {"MADENGINE_SMTP_HOST": "h", "MADENGINE_SMTP_TO": "a@b", "MADENGINE_SMTP_SSL": "maybe"}
        )


def test_config_file_wins_and_a_password_needs_a_private_file(tmp_path: Path) -> None:
    config = tmp_path / "smtp.yml"
    config.write_text(f"host: file.example\nport: 2525\nto: [x@example.org]\npassword: {SECRET}\nuser: u\n")
    os.chmod(config, 0o644)
    with pytest.raises(ConfigError, match="can be read by other users") as caught:
        report_mail.load_settings({}, str(config))
    assert "chmod 600" in caught.value.one_line() and SECRET not in caught.value.one_line()
    os.chmod(config, 0o600)
    settings = report_mail.load_settings(
        {"MADENGINE_SMTP_HOST": "env.example", "MADENGINE_SMTP_FROM": "f@e"}, str(config)
    )
    assert (settings.host, settings.port, settings.password, settings.sender) == ("file.example", 2525, SECRET, "f@e")
    (tmp_path / "bad.json").write_text('{"hots": "x"}')
    with pytest.raises(ConfigError, match="unknown key"):
        report_mail.load_settings({}, str(tmp_path / "bad.json"))


def test_auth_over_plain_text_is_refused_before_connecting() -> None:
    settings = report_mail.SmtpSettings("127.0.0.1", 9, "a@b", ["c@d"], user="u", password=SECRET, starttls=False)
    message = report_mail.build_message(settings, "s", "<p>x</p>", [], "x")
    with pytest.raises(ConfigError, match="unencrypted") as caught:
        report_mail.send(settings, message)
    assert "MADENGINE_SMTP_ALLOW_PLAIN=1" in caught.value.one_line() and SECRET not in caught.value.one_line()


def test_message_is_html_with_cid_images_and_the_page_attached() -> None:
    settings = report_mail.SmtpSettings("h", 587, "from@example.org", ["to@example.org", "cc@example.org"])
    images = [("chart1@madengine", b"\x89PNG one"), ("chart2@madengine", b"\x89PNG two")]
    body = '<p>x</p><img src="cid:chart1@madengine"><img src="cid:chart2@madengine">'
    message = report_mail.build_message(
        settings, "madengine report: perf", body, images, "plain summary", [("run_results.html", "<svg/>")]
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed["Subject"] == "madengine report: perf" and parsed["To"] == "to@example.org, cc@example.org"
    related = next(part for part in parsed.walk() if part.get_content_type() == "multipart/related")
    html = related.get_body(("html",))
    assert html is not None and "cid:chart1@madengine" in html.get_content()
    pngs = {
        part["Content-ID"]: part.get_content()
        for part in related.iter_parts()
        if part.get_content_type() == "image/png"
    }
    assert pngs == {"<chart1@madengine>": b"\x89PNG one", "<chart2@madengine>": b"\x89PNG two"}
    plain = parsed.get_body(("plain",))
    assert plain is not None and plain.get_content().strip() == "plain summary"
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "run_results.html" and attachment.get_content().strip() == "<svg/>"
