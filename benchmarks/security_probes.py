"""Security probes, counted: each one an attack on a real tunebook, and whether it held.

Two parts, both counted probe by probe (nothing here is a fixed number):

1. **Live probes** against a real ``tunebook dashboard`` process (a token from a file, loopback) serving
   a store whose goal, choice values and a trial's error carry HTML/JavaScript, terminal escape sequences
   (window title, screen clear, 8-bit CSI, bidi override, hyperlink) and spreadsheet formulas; and the
   real CLI's terminal and CSV output of that store. Each probe sends raw bytes on a socket (no client
   library normalizes the path or the headers) and states what holding means.
2. **The suite's security tests** (crafted checkpoints that would run code, the dashboard's Host and
   token rules, escaped user strings, terminal and CSV output): the node ids in ``SUITE`` run under
   pytest; each collected case is one probe, held when it passes.

    python benchmarks/security_probes.py            # prints "N probes, M held" and every probe that broke
    python benchmarks/security_probes.py --live     # part 1 only
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token-0123456789abcdef"
EVIL = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1mX\u202eevil\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"
XSS = "<script>alert(1)</script>"
FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(1)"]
CONTROLS = ("\x1b", "\x9b", "\x07", "\u202e")

#: the suite's security tests (pytest node ids; a parametrized test counts once per case)
SUITE = [
    "tests/checkpoints/test_checkpoint_safety.py",
    "tests/dashboard/test_dashboard_security.py",
    "tests/dashboard/test_dashboard.py::test_user_strings_are_escaped",
    "tests/dashboard/test_dashboard.py::test_token_is_required_on_every_request_when_given",
    "tests/dashboard/test_dashboard.py::test_cli_refuses_a_public_address_without_a_token",
    "tests/dashboard/test_dashboard.py::test_no_request_changes_the_store",
    "tests/cli/test_inert_output.py",
    "tests/cli/test_cli_output.py::test_escape_sequences_in_stored_text_are_not_printed",
    "tests/cli/test_cli_unit.py::test_printable_strips_escape_sequences_and_control_characters",
]


def _train(trial):
    if trial.params["opt"] == FORMULAS[1]:
        raise RuntimeError(f"boom {EVIL} {XSS}")
    trial.log(1, loss=0.5 + 0.01 * trial.number)


def make_store(folder: Path) -> str:
    import tunebook as tb

    url = f"sqlite:///{folder / 'store.db'}"
    study = tb.create_study("evil", goal=f"does {EVIL} {XSS} help?",
                            space={"scientific": {"opt": {"choice": [f"adam{EVIL}", "<img src=x onerror=alert(1)>",
                                                                     *FORMULAS]}},
                                   "nuisance": {"lr": {"min": 0.1, "max": 1.0}}},
                            objective=("loss", "min"), trials=12, max_train_steps=1, storage=url)
    tb.run(study, _train, workers=0, progress=False)
    return url


def raw(port: int, request: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """Send ``request`` as it is; (status, whole response) — status 0 when the server closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    data = b"".join(chunks)
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return (int(match.group(1)) if match else 0), data


def get(port: int, path: str, *, host: str | None = None, token: str | None = TOKEN, headers: str = "") -> tuple[int, bytes]:
    if token is not None:
        path += ("&" if "?" in path else "?") + f"token={token}"
    host = f"127.0.0.1:{port}" if host is None else host
    return raw(port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}\r\n".encode("latin-1"))


def start_dashboard(url: str, folder: Path) -> tuple[subprocess.Popen, int]:
    (folder / "token").write_text(TOKEN)
    proc = subprocess.Popen([sys.executable, "-m", "tunebook", "dashboard", "--storage", url, "--port", "0",
                             "--token-file", str(folder / "token")], cwd=folder, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()
    match = re.search(r":(\d+)/", line)
    if not match:
        raise RuntimeError(f"the dashboard did not start: {line}{proc.stderr.read()[-2000:]}")
    return proc, int(match.group(1))


def slowloris(port: int, connections: int = 100, seconds: float = 10.0) -> bool:
    """``connections`` clients dribble a header a byte a second; meanwhile every normal request is answered."""
    stop = threading.Event()
    socks = []
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
        socks.append(s)

    def dribble() -> None:
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"a")
                except OSError:
                    pass
            stop.wait(1.0)

    threading.Thread(target=dribble, daemon=True).start()
    answered = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answered.append(get(port, "/")[0] == 200)
        time.sleep(1.0)
    stop.set()
    for s in socks:
        s.close()
    return bool(answered) and all(answered)


def live_probes(port: int, url: str, folder: Path) -> list[tuple[str, bool]]:
    def no_raw_html(path: str) -> Callable[[], bool]:
        def probe() -> bool:
            body = get(port, path)[1]
            return b"<script>alert(" not in body and b"<img src=x" not in body  # escaped (&lt;img ...) is inert
        return probe

    def not_served(path: str) -> Callable[[], bool]:
        def probe() -> bool:
            status, body = get(port, path)
            return status in (400, 404) and b"root:" not in body and b"[project]" not in body
        return probe

    def status_is(path: str, expected: int, **kw: object) -> Callable[[], bool]:
        return lambda: get(port, path, **kw)[0] == expected  # type: ignore[arg-type]

    def cli_inert(*argv: str) -> Callable[[], bool]:
        def probe() -> bool:
            out = subprocess.run([sys.executable, "-m", "tunebook", *argv, "--storage", url], cwd=folder,
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            text = out.stdout + out.stderr
            return out.returncode == 0 and not any(c in text for c in CONTROLS)
        return probe

    def csv_inert() -> bool:
        target = folder / "out.csv"
        subprocess.run([sys.executable, "-m", "tunebook", "export", "evil", "--to", "csv", str(target), "--storage", url],
                       cwd=folder, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        return _cells_inert(target.read_text(encoding="utf-8"))

    def dashboard_csv_inert() -> bool:
        status, body = get(port, "/study/evil/trials.csv")
        return status == 200 and _cells_inert(body.split(b"\r\n\r\n", 1)[1].decode("utf-8", "replace"))

    long_header = "X-big: " + "a" * 200_000 + "\r\n"
    probes: list[tuple[str, Callable[[], bool]]] = [
        # the Host header (DNS rebinding): only requests addressed to the dashboard are answered
        ("host: another name", status_is("/", 400, host="evil.example")),
        ("host: a name ending in the address", status_is("/", 400, host=f"127.0.0.1.evil.example:{port}")),
        ("host: empty", status_is("/", 400, host="")),
        ("host: the address with another port's name", status_is("/", 400, host="localhost.evil:80")),
        # the token
        ("token: none", status_is("/", 401, token=None)),
        ("token: wrong", status_is("/", 401, token="x" * len(TOKEN))),
        ("token: a prefix", status_is("/", 401, token=TOKEN[:-1])),
        ("token: an empty one", status_is("/", 401, token="")),
        ("token: a forged session cookie", status_is("/", 401, token=None, headers="Cookie: tb_session=00\r\n")),
        ("token: a wrong bearer header", status_is("/", 401, token=None, headers="Authorization: Bearer nope\r\n")),
        ("token: on an API route", status_is("/api/notebook/state", 401, token=None)),
        ("token: on the CSV", status_is("/study/evil/trials.csv", 401, token=None)),
        # stored and reflected HTML (XSS)
        ("xss: stored goal on the notebook", no_raw_html("/")),
        ("xss: stored values on the study page", no_raw_html("/study/evil")),
        ("xss: stored error on the trial pages", lambda: all(no_raw_html(f"/study/evil/trial/{n}")() for n in range(12))),
        ("xss: a study name in the path", no_raw_html("/study/%3Cscript%3Ealert(1)%3C%2Fscript%3E")),
        ("xss: a query parameter", no_raw_html("/study/evil?state=%3Cscript%3Ealert(1)%3C/script%3E")),
        ("xss: a filter parameter", no_raw_html("/study/evil/table?p.opt=%3Cimg%20src=x%20onerror=alert(1)%3E")),
        ("xss: the compare page", no_raw_html("/compare?a=%3Cscript%3Ealert(1)%3C/script%3E&b=evil")),
        # path traversal
        ("traversal: ../ in /static", not_served("/static/../../../../etc/passwd")),
        ("traversal: %2e%2e in /static", not_served("/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd")),
        ("traversal: %2f in a script name", not_served("/static/..%2f..%2f..%2fpyproject.js")),
        ("traversal: a script outside the list", not_served("/static/app.js")),
        ("traversal: ../ in a study name", not_served("/study/..%2f..%2f..%2fetc%2fpasswd")),
        ("traversal: an absolute path", not_served("//etc/passwd")),
        # the server itself
        ("slowloris: 100 dribbling clients, every normal request answered", lambda: slowloris(port)),
        ("a 200 KB header is refused and the server lives", lambda: get(port, "/", headers=long_header)[0] in (0, 400, 413, 431)
         and get(port, "/")[0] == 200),
        ("a malformed request line is refused", lambda: raw(port, b"GET /\x00 HTTP/1.1\r\n\r\n")[0] in (0, 400)
         and get(port, "/")[0] == 200),
        ("no request changes the store", lambda: get(port, "/study/evil", headers="X-HTTP-Method-Override: DELETE\r\n")[0] == 200
         and raw(port, f"POST /study/evil?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n"
                       f"Connection: close\r\n\r\n".encode())[0] == 405),
        # output of stored text
        ("escapes: status", cli_inert("status")),
        ("escapes: status STUDY", cli_inert("status", "evil")),
        ("escapes: ls", cli_inert("ls")),
        ("escapes: report --format terminal", cli_inert("report", "evil", "--format", "terminal")),
        ("csv: export --to csv", csv_inert),
        ("csv: the dashboard's trials.csv", dashboard_csv_inert),
    ]
    results = []
    for name, probe in probes:
        try:
            held = bool(probe())
        except Exception as exc:  # a probe that crashed the server or the client did not hold
            print(f"  {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            held = False
        results.append((name, held))
    return results


def _cells_inert(text: str) -> bool:
    import csv
    import io

    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    return bool(cells) and not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(cell) for cell in cells)


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def suite_probes() -> list[tuple[str, bool]]:
    """Each case of the suite's security tests, run by pytest: (node id, passed)."""
    # the test folders a selection imports from (the whole suite has them on sys.path once collected)
    path = os.pathsep.join([str(ROOT), *(str(ROOT / "tests" / d) for d in ("", "analysis", "cli"))])
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q",
                        f"--junitxml={report}", *SUITE], cwd=ROOT, env={**os.environ, "PYTHONPATH": path},
                       capture_output=True, text=True)
        import xml.etree.ElementTree as ET

        cases = ET.parse(report).getroot().iter("testcase")
        return [(f"{c.get('classname')}::{c.get('name')}",
                 not any(child.tag in ("failure", "error", "skipped") for child in c)) for c in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live", action="store_true", help="only the live probes")
    parser.add_argument("--suite", action="store_true", help="only the suite's security tests")
    args = parser.parse_args()
    results: list[tuple[str, bool]] = []
    if not args.suite:
        results += _live()
    if not args.live:
        suite = suite_probes()
        print(f"suite: {len(suite)} probes, {sum(h for _, h in suite)} held")
        results += suite
    for name, held in results:
        if not held:
            print(f"  did not hold: {name}")
    print(f"{len(results)} probes, {sum(h for _, h in results)} held")


def _live() -> list[tuple[str, bool]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = make_store(folder)
        proc, port = start_dashboard(url, folder)
        try:
            live = live_probes(port, url, folder)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"live: {len(live)} probes, {sum(h for _, h in live)} held")
    return live


if __name__ == "__main__":
    main()
