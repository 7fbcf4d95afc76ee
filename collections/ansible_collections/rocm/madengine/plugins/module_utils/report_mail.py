"""Sending a report by e-mail: SMTP settings (environment or a config file), the message (HTML body with the
charts as cid: PNG parts, the page attached), and delivery with STARTTLS or implicit TLS and AUTH."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import stat
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, cast

from .errors import ConfigError, MadengineError

ENV_PREFIX = "MADENGINE_SMTP_"
KEYS = ("host", "port", "user", "password", "from", "to", "starttls", "ssl", "ca_file", "subject", "allow_plain")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: List[str]
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    implicit_tls: bool = False
    ca_file: str = ""
    subject: str = ""
    allow_plain: bool = False
    timeout: float = 30.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean", hint="use 1/0, true/false, yes/no")


def _from_file(path: str) -> Dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read SMTP config {path}: {exc.strerror}", hint="check --smtp-config") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"SMTP config {path} is not YAML/JSON: {str(exc).splitlines()[0]}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"SMTP config {path} must be a mapping of settings ({', '.join(KEYS)})")
    unknown = sorted(str(key) for key in data if str(key).lower() not in KEYS)
    if unknown:
        raise ConfigError(f"SMTP config {path}: unknown key(s) {', '.join(unknown)}", hint=f"known: {', '.join(KEYS)}")
    if data.get("password") and mode & (stat.S_IRWXO | stat.S_IRWXG):
        raise ConfigError(
            f"SMTP config {path} holds a password but can be read by other users (mode {stat.S_IMODE(mode):03o})",
            hint=f"run `chmod 600 {path}`, or give the password in MADENGINE_SMTP_PASSWORD instead",
        )
    return {str(key).lower(): value for key, value in data.items() if value is not None}


def _from_env(env: Mapping[str, str]) -> Dict[str, Any]:
    values = {}
    for key in KEYS:
        name = ENV_PREFIX + key.upper()
        if env.get(name, "") != "":
            values[key] = env[name]
    return values


def _addresses(value: Any) -> List[str]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def load_settings(
    env: Mapping[str, str], config_path: Optional[str] = None, recipients: Sequence[str] = ()
) -> SmtpSettings:
    """Settings from `config_path` (its keys win), then MADENGINE_SMTP_* for what the file lacks; `recipients`
    (--to) replace both. Raise ConfigError (one line, naming the key) when something needed is missing."""
    values = _from_env(env)
    if config_path:
        values.update(_from_file(config_path))
    source = f"--smtp-config {config_path} or " if config_path else ""
    host = str(values.get("host", "")).strip()
    if not host:
        raise ConfigError(f"no SMTP server: set {source}MADENGINE_SMTP_HOST", hint="see docs/reports.md")
    implicit_tls = _flag(values.get("ssl", False), "ssl")
    starttls = False if implicit_tls else _flag(values.get("starttls", True), "starttls")
    try:
        port = int(values.get("port") or (465 if implicit_tls else 587))
    except (TypeError, ValueError):
        raise ConfigError(f"SMTP port {values.get('port')!r} is not a number", hint="set MADENGINE_SMTP_PORT") from None
    to = list(recipients) or _addresses(values.get("to", ""))
    if not to:
        raise ConfigError(f"no recipients: give --to ADDRESS or set {source}MADENGINE_SMTP_TO (comma-separated)")
    user = str(values.get("user", ""))
    sender = str(values.get("from", "")) or (user if "@" in user else f"madengine@{socket.gethostname()}")
    ca_file = str(values.get("ca_file", ""))
    if ca_file and not os.path.isfile(ca_file):
        raise ConfigError(f"SMTP CA file {ca_file} does not exist", hint="fix MADENGINE_SMTP_CA_FILE (a PEM file)")
    settings = SmtpSettings(
        host=host,
        port=port,
        sender=sender,
        recipients=to,
        user=user,
        password=str(values.get("password", "")),
        starttls=starttls,
        implicit_tls=implicit_tls,
        ca_file=ca_file,
        subject=str(values.get("subject", "")),
        allow_plain=_flag(values.get("allow_plain", False), "allow_plain"),
    )
    refuse_plain_auth(settings)
    return settings


def refuse_plain_auth(settings: SmtpSettings) -> None:
    """ConfigError when the password would cross the network unencrypted and that was not explicitly allowed."""
    encrypted = settings.implicit_tls or settings.starttls
    if settings.user and not encrypted and not settings.allow_plain:
        raise ConfigError(
            f"refusing to send the SMTP password for {settings.user} to {settings.where} unencrypted",
            hint="enable MADENGINE_SMTP_STARTTLS or MADENGINE_SMTP_SSL, or set MADENGINE_SMTP_ALLOW_PLAIN=1",
        )


def build_message(
    settings: SmtpSettings,
    subject: str,
    html_body: str,
    images: Sequence[Tuple[str, bytes]],
    text_body: str,
    attachments: Sequence[Tuple[str, str]] = (),
) -> EmailMessage:
    """multipart/mixed: [multipart/alternative: [text/plain, multipart/related: [text/html, image/png (cid)...]],
    attachments (name, HTML text)...]."""
    message = EmailMessage()
    message["Subject"] = settings.subject or subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(localtime=False)
    domain = settings.sender.rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text_body)
    message.add_alternative(html_body, subtype="html")
    html_part = cast(EmailMessage, message.get_body(("html",)))
    for cid, png in images:
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", filename=cid.split("@")[0] + ".png")
    for name, text in attachments:
        message.add_attachment(text, subtype="html", filename=name)
    return message


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file or None)


def _scrub(text: str, settings: SmtpSettings) -> str:
    return text.replace(settings.password, "***") if settings.password else text


def _fail(settings: SmtpSettings, what: str, hint: str) -> MadengineError:
    return MadengineError(_scrub(f"cannot send the report via {settings.where}: {what}", settings), hint=hint)


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Deliver `message`; raise MadengineError (one line naming host:port and what to do) on any failure."""
    refuse_plain_auth(settings)
    client: Optional[smtplib.SMTP] = None
    try:
        if settings.implicit_tls:
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=_tls_context(settings)
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        client.ehlo()
        if settings.starttls:
            client.starttls(context=_tls_context(settings))
            client.ehlo()
        if settings.user:
            client.login(settings.user, settings.password)
        client.send_message(message, from_addr=settings.sender, to_addrs=settings.recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise _fail(
            settings,
            f"the server rejected the login of {settings.user!r} ({exc.smtp_code})",
            "check MADENGINE_SMTP_USER and MADENGINE_SMTP_PASSWORD",
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        what = "the server does not offer STARTTLS" if "STARTTLS" in str(exc) else f"not supported: {exc}"
        raise _fail(
            settings, what, "use MADENGINE_SMTP_SSL=1 (implicit TLS), or MADENGINE_SMTP_STARTTLS=0 on a trusted network"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(sorted(exc.recipients))
        raise _fail(settings, f"recipients refused: {refused}", "check --to / MADENGINE_SMTP_TO") from None
    except smtplib.SMTPSenderRefused as exc:
        raise _fail(
            settings, f"sender {exc.sender} refused ({exc.smtp_code})", "set MADENGINE_SMTP_FROM to an allowed sender"
        ) from None
    except smtplib.SMTPResponseException as exc:
        reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        raise _fail(settings, f"{exc.smtp_code} {reply}", "check the server's log") from None
    except ssl.SSLError as exc:
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = f"certificate verify failed: {exc.verify_message}"
        else:
            reason = exc.reason or str(exc)
        raise _fail(
            settings,
            f"TLS failed: {reason}",
            "set MADENGINE_SMTP_CA_FILE to the CA that signed the server's certificate (or fix the host name)",
        ) from None
    except smtplib.SMTPException as exc:
        raise _fail(settings, str(exc) or type(exc).__name__, "check the SMTP settings") from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise _fail(
            settings, f"cannot connect: {reason}", "check MADENGINE_SMTP_HOST/_PORT and that the server is up"
        ) from None
    finally:
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
