"""The production process layout (deploy/supervisord.conf) started for a test: supervisord running
gunicorn, a Celery worker and beat with PORTAL_ENV=production, and a small HTTP client that behaves
like a browser behind a TLS-terminating proxy (X-Forwarded-Proto: https, Secure cookies kept)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from http.cookies import SimpleCookie
from pathlib import Path

import requests
from supervisor.xmlrpc import SupervisorTransport

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "supervisord.conf"
PROGRAMS = ("web", "worker", "beat")


class Supervisor:
    """``supervisord -c deploy/supervisord.conf`` in the foreground, with its own run directory."""

    def __init__(self, *, env: dict[str, str]):
        self.run_dir = tempfile.mkdtemp(prefix="portal-run-")
        self.env = {**env, "PORTAL_RUN_DIR": self.run_dir}
        self.process: subprocess.Popen | None = None

    def start(self) -> Supervisor:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(CONFIG)],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def rpc(self):
        """supervisord's XML-RPC interface on its unix socket (what supervisorctl talks to)."""
        transport = SupervisorTransport(None, None, serverurl=f"unix://{self.run_dir}/supervisor.sock")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def info(self, program: str) -> dict:
        try:
            return self.rpc().supervisor.getProcessInfo(program)
        except (OSError, xmlrpc.client.Fault):
            return {"statename": "UNKNOWN", "pid": 0}

    def pid(self, program: str) -> int:
        """The running program's PID (0 while it is not running)."""
        return self.info(program)["pid"]

    def status(self, program: str) -> str:
        return self.info(program)["statename"]

    def wait_running(self, program: str, *, other_than: int = 0, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(program) == "RUNNING":
                pid = self.pid(program)
                if pid and pid != other_than:
                    return pid
            time.sleep(0.1)
        raise AssertionError(f"{program} is not running after {timeout} s:\n{self.log(program)}")

    def log(self, program: str) -> str:
        path = Path(self.run_dir) / f"{program}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self, timeout: float = 60) -> list[int]:
        """SIGTERM to supervisord (it stops its programs first); the PIDs still alive afterwards,
        which are then killed (so the caller can fail the test and leave nothing behind)."""
        if self.process is None:
            return []
        children = [pid for pid in (self.pid(p) for p in PROGRAMS) if pid] if self.running else []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        survivors = [pid for pid in children if pid_alive(pid)]
        for pid in survivors:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.process = None
        return survivors

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


class ProxiedClient:
    """HTTP to gunicorn as a TLS-terminating proxy would forward a browser's requests: every request
    carries X-Forwarded-Proto: https and the Origin of the https site; cookies are kept whatever
    their Secure flag (the proxy spoke HTTPS to the browser). ``set_cookies`` holds every
    Set-Cookie header seen, for assertions on their attributes."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.https_origin = "https://" + self.base_url.split("://", 1)[1]
        self.cookies: dict[str, str] = {}
        self.set_cookies: dict[str, str] = {}

    def request(self, method: str, path: str, *, proxied: bool = True, headers=None, **kwargs):
        all_headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if proxied:
            all_headers["X-Forwarded-Proto"] = "https"
            if method != "GET":
                all_headers["Origin"] = self.https_origin
                all_headers["Referer"] = self.https_origin + path
        all_headers.update(headers or {})
        response = requests.request(
            method, self.base_url + path, headers=all_headers, allow_redirects=False, timeout=20, **kwargs
        )
        for header in response.raw.headers.getlist("Set-Cookie"):
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                self.set_cookies[name] = header
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return response

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict, **kwargs):
        token = self.cookies.get("__Host-csrftoken") or self.cookies.get("csrftoken", "")
        return self.request("POST", path, data={"csrfmiddlewaretoken": token, **data}, **kwargs)
