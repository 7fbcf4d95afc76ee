"""report to-html / to-email through the real CLI: the page rendered by a real headless Chromium (Debian's
`chromium`, scripts/setup-reporting.sh), and the e-mail delivered to a real SMTP server on loopback (aiosmtpd with
STARTTLS and AUTH) whose received message is read back."""

from __future__ import annotations

import contextlib
import csv
import email
import email.policy
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from clirun import madengine

from ansible_collections.rocm.madengine.plugins.module_utils import report_table
from ansible_collections.rocm.madengine.plugins.module_utils.perfcsv import ALL_COLUMNS

pytestmark = pytest.mark.integration

SETUP_HINT = "run `bash scripts/setup-reporting.sh` (as root) first"
SERIES_BLUE = (0x4C, 0x72, 0xB0)  # report_charts.SERIES_COLOURS[0]: the first series' bars


def chromium_path() -> str:
    state = Path(os.environ.get("MADENGINE_REPORTING_DIR") or "/var/tmp/madengine-reporting")
    env_file = state / "reporting.env"
    if not env_file.is_file():
        pytest.skip(f"{env_file} is missing: {SETUP_HINT}")
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    path = values.get("CHROMIUM", "")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{env_file} names no runnable CHROMIUM ({path!r}): {SETUP_HINT}")
    return path


@dataclass
class Rendered:
    console: List[str]
    screenshot: Path


def render_in_chromium(page: Path, screenshot: Path, height: int = 2400) -> Rendered:
    """Load `page` from a file:// URL in headless Chromium; console messages come back as CONSOLE log lines."""
    argv = [chromium_path(), "--headless", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
    if os.geteuid() == 0:
        argv.append("--no-sandbox")
    argv += [f"--user-data-dir={screenshot.parent / 'chromium-profile'}", f"--window-size=1280,{height}"]
    argv += [f"--screenshot={screenshot}", page.resolve().as_uri()]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and screenshot.is_file(), proc.stderr[-2000:]
    print(f"screenshot: {screenshot}")
    return Rendered([line for line in proc.stderr.splitlines() if ":CONSOLE" in line], screenshot)


def colour_count(png: Path, colour: tuple) -> tuple:
    """(distinct colours, pixels of exactly `colour`) in a screenshot."""
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    return len(colours), sum(count for count, value in colours if value == colour)


def svg_elements(page_text: str) -> List[str]:
    return re.findall(r"<svg.*?</svg>", page_text, flags=re.S)


def drawn_paths(svg: str) -> int:
    return len(re.findall(r'<path[^>]* d="M[^"]{10,}', svg))


def test_console_capture_sees_errors(tmp_path: Path) -> None:
    """The capture the other tests rely on: a page that logs an error and throws is seen as such."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><script>console.error("boom"); nosuchfunction();</script></body></html>')
    rendered = render_in_chromium(page, tmp_path / "bad.png", height=300)
    assert any('"boom"' in line for line in rendered.console), rendered.console
    assert any("nosuchfunction" in line for line in rendered.console), rendered.console


def test_fixture_run_report_renders_with_charts(mad_package: Path, tmp_path: Path) -> None:
    for run_id in ("first", "second"):
        result = madengine(mad_package, "run", "--tags", "dummies", "--tags", "failures", "--run-id", run_id)
        assert result.rc == 3, result.output  # the 'failures' models fail on purpose
    result = madengine(mad_package, "report", "to-html", "--csv-file-path", "perf.csv", "--title", "Fixture runs")
    assert result.rc == 0, result.output
    page = mad_package / "perf.html"
    assert f"wrote {page.name}" in result.stdout and "ERROR_PATTERN (2)" in result.stdout
    text = page.read_text(encoding="utf-8")
    with open(mad_package / "perf.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    metrics = list(dict.fromkeys(r["metric"] for r in rows if r["status"] == "SUCCESS" and r["metric"]))
    by_metric, _heading, over_runs = text.partition("<h3>Trends over runs</h3>")
    charts = svg_elements(by_metric)
    assert len(charts) == len(metrics) >= 2
    # both runs are in the results store beside perf.csv: a trend chart per model measured in both
    trend_charts = svg_elements(over_runs)
    assert len(trend_charts) == len({(r["model"], r["metric"]) for r in rows if r["status"] == "SUCCESS"})
    for chart in charts + trend_charts:
        assert drawn_paths(chart) >= 10
    assert "<script" not in text and not re.search(r'(src|href)="(https?:)?//', text)  # nothing to fetch
    failures = sum(1 for r in rows if r["status"] == "FAILURE")
    assert f"<b>{failures}</b><span>FAILURE</span>" in text and f"All rows ({len(rows)})" in text
    shot = shutil.copy(page, tmp_path / "perf.html")
    rendered = render_in_chromium(Path(shot), tmp_path / "fixture-report.png")
    assert rendered.console == []
    colours, blue = colour_count(rendered.screenshot, SERIES_BLUE)
    assert colours > 50 and blue > 2000, (colours, blue)


def synthetic_rows() -> List[Dict[str, str]]:
    rows = []
    for host in ("gpu-node-1", "gpu-node-2"):
        for model, base in (("llama_70b", 1200.0), ("bert_large", 3400.0), ("<resnet50>", 2900.0)):
            for repeat in range(1, 4):
                rows.append(
                    {
                        "model": model,
                        "machine_name": host,
                        "performance": f"{base * (1 + 0.02 * repeat) * (0.8 if host.endswith('2') else 1):.1f}",
                        "metric": "tokens_per_second" if model == "llama_70b" else "samples_per_second",
                        "status": "SUCCESS",
                        "run_id": "nightly-42",
                        "repeat": str(repeat),
                        "verdict": "REGRESSED" if host.endswith("2") and model == "bert_large" else "UNCHANGED",
                        "relative_change": "-18.50" if host.endswith("2") and model == "bert_large" else "0.40",
                    }
                )
    rows.append({"model": "broken", "machine_name": "gpu-node-1", "status": "FAILURE", "failure_reason": "TIMEOUT"})
    return rows


def write_csv(path: Path, rows: List[Dict[str, str]]) -> None:
    columns = list(ALL_COLUMNS) + ["repeat", "verdict"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def test_hosts_repeats_and_verdicts_render(tmp_path: Path) -> None:
    write_csv(tmp_path / "nightly.csv", synthetic_rows())
    for bad in ("missing.csv", "."):
        result = madengine(tmp_path, "report", "to-html", "--csv-file-path", bad)
        assert result.rc == 1 and result.stderr.count("error:") == 1 and bad in result.stderr, result.output
    result = madengine(tmp_path, "report", "to-html", "--csv-file-path", "nightly.csv", "--table-only")
    assert result.rc == 0, result.output
    bare = report_table.bare_table_html(report_table.read_csv(str(tmp_path / "nightly.csv")))
    assert (tmp_path / "nightly.html").read_text() == bare
    result = madengine(tmp_path, "report", "to-html", "--csv-file", "nightly.csv", "-o", "out/report.html")
    assert result.rc != 0 and "cannot write" in result.output  # out/ does not exist: one line, no traceback
    assert "Traceback" not in result.output
    (tmp_path / "out").mkdir()
    result = madengine(tmp_path, "report", "to-html", "--csv-file", "nightly.csv", "-o", "out/report.html")
    assert result.rc == 0, result.output
    text = (tmp_path / "out" / "report.html").read_text()
    charts = svg_elements(text)
    assert len(charts) == 2 and all("gpu-node-2" in chart for chart in charts)
    assert "REGRESSED -18.50%" in charts[1] and "median" in charts[0]
    assert "&lt;resnet50&gt;" in charts[1] and "<resnet50>" not in text
    rendered = render_in_chromium(tmp_path / "out" / "report.html", tmp_path / "nightly.png")
    assert rendered.console == []
    colours, blue = colour_count(rendered.screenshot, SERIES_BLUE)
    assert colours > 50 and blue > 1000, (colours, blue)


# ----------------------------------------------------------------------------------------------------------------
# SMTP
# ----------------------------------------------------------------------------------------------------------------
USER, PASSWORD = "reporter", "Corr3ct-Horse-9"


@dataclass
class Mailbox:
    host: str
    port: int
    ca_file: Path
    messages: List[Dict[str, object]] = field(default_factory=list)
    logins: List[str] = field(default_factory=list)

    def env(self, **extra: str) -> Dict[str, str]:
        values = {
            "MADENGINE_SMTP_HOST": self.host,
            "MADENGINE_SMTP_PORT": str(self.port),
            "MADENGINE_SMTP_USER": USER,
            "MADENGINE_SMTP_PASSWORD": PASSWORD,
            "MADENGINE_SMTP_FROM": "madengine@ci.example",
            "MADENGINE_SMTP_CA_FILE": str(self.ca_file),
        }
        values.update(extra)
        return values


def self_signed(tmp: Path) -> tuple:
    cert, key = tmp / "smtp-cert.pem", tmp / "smtp-key.pem"
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed (Debian package openssl)")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def smtp_server(tmp_path: Path, tls: str = "starttls") -> Iterator[Mailbox]:
    """A real aiosmtpd server on loopback with AUTH; tls: "starttls" (required), "implicit" or "none"."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    box = Mailbox("127.0.0.1", free_port(), cert)
    lock = threading.Lock()

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
            with lock:
                box.messages.append(
                    {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "data": envelope.content}
                )
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == USER
            and auth_data.password.decode() == PASSWORD
        )
        with lock:
            box.logins.append(f"{mechanism}:{'ok' if ok else 'rejected'}")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd replies 535 itself

    options: Dict[str, object] = {"authenticator": authenticator, "auth_required": True}
    if tls == "starttls":
        options.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    elif tls == "implicit":
        # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; this connection is TLS from its first byte.
        options.update(ssl_context=context, auth_require_tls=False)
    else:
        options.update(auth_require_tls=False)
    controller = Controller(Handler(), hostname=box.host, port=box.port, **options)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    with smtp_server(tmp_path) as box:
        yield box


def report_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "results"
    directory.mkdir()
    write_csv(directory / "nightly.csv", synthetic_rows())
    write_csv(directory / "smoke.csv", synthetic_rows()[:3])
    (directory / "broken.csv").write_text("a,b\n1,2,3\n")
    return directory


def test_to_email_sends_through_starttls_and_auth(mailbox: Mailbox, tmp_path: Path) -> None:
    directory = report_dir(tmp_path)
    env = mailbox.env(MADENGINE_SMTP_TO="perf-team@example.org")
    result = madengine(tmp_path, "report", "to-email", "--dir", str(directory), "--send", "--to", "lead@example.org",
                       "--to", "ops@example.org", env=env)  # fmt: skip
    assert result.rc == 0, result.output
    assert "skipped" in result.output and "broken.csv" in result.output
    assert f"via {mailbox.host}:{mailbox.port}" in result.stdout
    assert PASSWORD not in result.output
    assert mailbox.logins and all(login.endswith(":ok") for login in mailbox.logins)
    (received,) = mailbox.messages
    assert received["from"] == "madengine@ci.example"
    assert received["to"] == ["lead@example.org", "ops@example.org"]  # --to replaces MADENGINE_SMTP_TO
    message = email.message_from_bytes(received["data"], policy=email.policy.default)  # type: ignore[arg-type]
    assert message["Subject"].startswith("madengine report: nightly, smoke")
    assert "1 FAILURE" in message["Subject"] and "REGRESSED" in message["Subject"]
    html_part = message.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert len(cids) == 3  # nightly measured two metrics, smoke one
    images = {
        part["Content-ID"].strip("<>"): part.get_content()
        for part in message.walk()
        if part.get_content_type() == "image/png"
    }
    assert set(images) == set(cids)
    assert all(png.startswith(b"\x89PNG") and len(png) > 5000 for png in images.values())
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "run_results.html"
    assert attachment.get_content().replace("\r\n", "\n") == (directory / "run_results.html").read_text()
    assert "<svg" in attachment.get_content() and "<h2>nightly</h2>" in attachment.get_content()
    plain = message.get_body(("plain",))
    assert plain is not None and "TIMEOUT: 1" in plain.get_content()


def test_wrong_password_is_one_line_without_the_password(mailbox: Mailbox, tmp_path: Path) -> None:
    directory = report_dir(tmp_path)
    wrong = "Wr0ng-Secret-77"
    env = mailbox.env(MADENGINE_SMTP_PASSWORD=wrong, MADENGINE_SMTP_TO="a@example.org")
    result = madengine(tmp_path, "report", "to-email", "--dir", str(directory), "--send", env=env)
    assert result.rc == 1, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"{mailbox.host}:{mailbox.port}" in line and "rejected the login" in line
    assert wrong not in result.output and PASSWORD not in result.output and "Traceback" not in result.output
    assert mailbox.messages == [] and mailbox.logins and mailbox.logins[-1].endswith(":rejected")


def test_untrusted_certificate_and_refused_connection_are_one_line(mailbox: Mailbox, tmp_path: Path) -> None:
    directory = report_dir(tmp_path)
    env = mailbox.env(MADENGINE_SMTP_TO="a@example.org", MADENGINE_SMTP_CA_FILE="")
    env.pop("MADENGINE_SMTP_CA_FILE")
    result = madengine(tmp_path, "report", "to-email", "--dir", str(directory), "--send", env=env)
    assert result.rc == 1 and "certificate verify failed" in result.stderr, result.output
    assert "MADENGINE_SMTP_CA_FILE" in result.stderr and PASSWORD not in result.output
    closed = mailbox.env(MADENGINE_SMTP_TO="a@example.org", MADENGINE_SMTP_PORT=str(free_port()))
    result = madengine(tmp_path, "report", "to-email", "--dir", str(directory), "--send", env=closed)
    assert result.rc == 1 and "Connection refused" in result.stderr, result.output
    assert mailbox.messages == []


def test_to_email_table_only_is_the_originals_file(tmp_path: Path) -> None:
    directory = report_dir(tmp_path)
    result = madengine(tmp_path, "report", "to-email", "--dir", str(directory), "--table-only", "-o", "t.html")
    assert result.rc == 0, result.output
    text = (directory / "t.html").read_text()
    assert text.startswith('<h2>nightly</h2>\n<table border="1" class="dataframe">')
    assert "<h2>smoke</h2>" in text and "broken" not in text.split("</h2>")[0] and "<svg" not in text
    empty = tmp_path / "empty"
    empty.mkdir()
    result = madengine(tmp_path, "report", "to-email", "--dir", str(empty))
    assert result.rc == 0 and "nothing written" in result.stdout and list(empty.iterdir()) == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # our deliberately plain servers
def test_implicit_tls_delivers(tmp_path: Path) -> None:
    directory = report_dir(tmp_path)
    with smtp_server(tmp_path, tls="implicit") as box:
        env = box.env(MADENGINE_SMTP_SSL="1", MADENGINE_SMTP_TO="a@example.org", MADENGINE_SMTP_SUBJECT="Nightly")
        result = madengine(tmp_path, "report", "to-email", "--dir", str(directory), "--send", env=env)
        assert result.rc == 0, result.output
        (received,) = box.messages
    message = email.message_from_bytes(received["data"], policy=email.policy.default)  # type: ignore[arg-type]
    assert message["Subject"] == "Nightly" and received["to"] == ["a@example.org"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # our deliberately plain servers
def test_password_is_not_sent_unencrypted_unless_allowed(tmp_path: Path) -> None:
    directory = report_dir(tmp_path)
    with smtp_server(tmp_path, tls="none") as box:
        env = box.env(MADENGINE_SMTP_STARTTLS="0", MADENGINE_SMTP_TO="a@example.org")
        result = madengine(tmp_path, "report", "to-email", "--dir", str(directory), "--send", env=env)
        assert result.rc == 4 and "unencrypted" in result.stderr and "MADENGINE_SMTP_ALLOW_PLAIN=1" in result.stderr
        assert box.logins == [] and box.messages == [] and not (directory / "run_results.html").exists()
        env["MADENGINE_SMTP_ALLOW_PLAIN"] = "1"
        result = madengine(tmp_path, "report", "to-email", "--dir", str(directory), "--send", env=env)
        assert result.rc == 0, result.output
        assert box.logins and len(box.messages) == 1
