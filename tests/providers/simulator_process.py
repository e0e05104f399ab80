"""Run the provider simulator (``manage.py provider_simulator``) as a separate process for tests.

    with SimulatorProcess(secret="s", key_id="k", fail_rate=0.3, seed=1) as sim:
        sim.base_url          # http://127.0.0.1:PORT/v1, what a Provider's api_base_url points at
        sim.state()           # GET /_sim/state
        sim.configure(fail_rate=1, faults=["lost"])
        sim.generate_usage(5)
        sim.request("PUT", "/quotas/g1", body, idempotency_key="k1")   # a signed API call

Standard library only; the process binds a free loopback port and is terminated (SIGTERM, then
SIGKILL after a grace period) on exit."""

import http.client
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from apps.providers import signing

ROOT = Path(__file__).resolve().parents[2]
READY_RE = re.compile(r"Provider simulator listening on (http://\S+/v1)")
OPTIONS = ("fail_rate", "faults", "latency", "hang_seconds", "slow_seconds", "seed", "db", "verbose")


class SimulatorError(RuntimeError):
    pass


@dataclass
class SimResponse:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None


class SimulatorProcess:
    """A provider simulator in its own process. ``options`` are the command's options in Python
    spelling: fail_rate, faults (list or comma string), latency, hang_seconds, slow_seconds, seed,
    db, verbose (the process's stderr then goes to this process's stderr)."""

    def __init__(
        self, *, secret: str = "test-secret", key_id: str = "test", startup_timeout: float = 20.0, **options
    ):
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise TypeError(f"unknown simulator options: {', '.join(sorted(unknown))}")
        self.secret = secret
        self.key_id = key_id
        self.options = options
        self.startup_timeout = startup_timeout
        self.base_url: str | None = None
        self.process: subprocess.Popen | None = None
        self._stderr = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None

    # ----- lifecycle ---------------------------------------------------------------------------------

    def command(self) -> list[str]:
        args = [sys.executable, "manage.py", "provider_simulator", "--host", "127.0.0.1", "--port", "0"]
        args += ["--key-id", self.key_id, "--secret", self.secret]
        for name, value in self.options.items():
            if value is None or value is False:
                continue
            flag = "--" + name.replace("_", "-")
            if value is True:
                args.append(flag)
            elif name == "faults" and not isinstance(value, str):
                args += [flag, ",".join(value)]
            else:
                args += [flag, str(value)]
        return args

    def start(self) -> "SimulatorProcess":
        if self.running:
            return self
        # The process's stderr goes to a file (read back when it fails to start), never to a pipe
        # that nobody drains; with verbose=True it is inherited.
        self._stderr = None if self.options.get("verbose") else tempfile.TemporaryFile()  # noqa: SIM115
        self._lines = queue.Queue()
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            text=True,
        )
        self._reader = threading.Thread(target=self._read_stdout, args=(self.process,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        try:
            self.base_url = self._wait_for_url(deadline)
            self._wait_for_health(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_stdout(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_url(self, deadline: float) -> str:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SimulatorError(
                    f"the simulator did not start in {self.startup_timeout} s{self._stderr_tail()}"
                )
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                self.process.wait(timeout=5)
                raise SimulatorError(
                    f"the simulator exited with status {self.process.returncode}{self._stderr_tail()}"
                )
            match = READY_RE.search(line)
            if match:
                return match[1]

    def _wait_for_health(self, deadline: float) -> None:
        while True:
            try:
                if self.control("GET", "/health", timeout=1).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SimulatorError(f"the simulator's /_sim/health never answered{self._stderr_tail()}")
            time.sleep(0.05)

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace")[-3000:]
        return f":\n{text}" if text else ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait (SIGKILL after ``timeout``); the exit status (0 after a clean shutdown)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if process.stdout:
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return process.returncode

    def __enter__(self) -> "SimulatorProcess":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ----- addresses -----------------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """http://127.0.0.1:PORT (no path)."""
        if not self.base_url:
            raise SimulatorError("the simulator is not running")
        return self.base_url[: -len("/v1")]

    @property
    def port(self) -> int:
        return urlsplit(self.root_url).port

    # ----- control API ---------------------------------------------------------------------------------

    def control(
        self, method: str, route: str, body: dict | None = None, *, timeout: float = 5.0
    ) -> SimResponse:
        data = json.dumps(body).encode() if body is not None else b""
        return self._http(method, "/_sim" + route, data, {"Content-Type": "application/json"}, timeout)

    def _control_json(self, method: str, route: str, body: dict | None = None, timeout: float = 30.0) -> dict:
        response = self.control(method, route, body, timeout=timeout)
        if response.status != 200:
            raise SimulatorError(f"{method} /_sim{route} answered {response.status}: {response.body[:500]!r}")
        return response.json()

    def health(self) -> dict:
        return self._control_json("GET", "/health")

    def state(self) -> dict:
        """{"quotas": {grant_id: {...}}, "effects": {"grant:version:op": n}, "usage": {...},
        "requests": {"total", "by_fault", "by_status"}, "config": {...}}"""
        return self._control_json("GET", "/state")

    def configure(self, **settings) -> dict:
        """Change fault settings: fail_rate, faults (list), latency, hang_seconds, slow_seconds."""
        if isinstance(settings.get("faults"), str):
            settings["faults"] = [item for item in settings["faults"].split(",") if item]
        return self._control_json("POST", "/config", settings)

    def generate_usage(self, records_per_quota: int = 1, grant_ids: list[str] | None = None) -> dict:
        body = {"records_per_quota": records_per_quota}
        if grant_ids is not None:
            body["grant_ids"] = [str(grant_id) for grant_id in grant_ids]
        return self._control_json("POST", "/usage/generate", body, timeout=300)

    def add_raw_usage(self, records: list) -> dict:
        """Append records exactly as given (invalid ones too) to the simulator's usage feed."""
        return self._control_json("POST", "/usage/raw", {"records": records})

    def reset(self) -> dict:
        """Empty storage and counters; fault settings and RNG back to those given at start."""
        return self._control_json("POST", "/reset")

    def force_quota(self, grant_id: str, **quota) -> dict:
        """Store a quota as given, bypassing version rules and effects (drift for reconciler tests)."""
        return self._control_json("PUT", f"/quotas/{quote(str(grant_id), safe='')}", quota)

    def forget_quota(self, grant_id: str) -> bool:
        """Delete a quota at the provider without a trace (drift: "missing")."""
        return self._control_json("DELETE", f"/quotas/{quote(str(grant_id), safe='')}")["deleted"]

    # ----- the signed API --------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body=None,
        *,
        idempotency_key: str | None = None,
        auto_idempotency_key: bool = True,
        secret: str | None = None,
        key_id: str | None = None,
        timestamp: int | None = None,
        headers: dict | None = None,
        raw_body: bytes | None = None,
        timeout: float = 5.0,
    ) -> SimResponse:
        """A signed API request; ``path`` is relative to the base URL ("/quotas/g1?version=2").

        PUT and DELETE get a fresh Idempotency-Key unless one is given (or auto_idempotency_key is
        False). Connection errors and time-outs propagate (ConnectionError, TimeoutError)."""
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
        full_path = urlsplit(self.base_url).path + path
        all_headers = {"Content-Type": "application/json", signing.HEADER_KEY_ID: key_id or self.key_id}
        all_headers.update(
            signing.sign(
                secret=secret or self.secret, method=method, path=full_path, body=data, timestamp=timestamp
            )
        )
        if idempotency_key is None and auto_idempotency_key and method in ("PUT", "DELETE"):
            idempotency_key = uuid.uuid4().hex
        if idempotency_key is not None:
            all_headers[signing.HEADER_IDEMPOTENCY_KEY] = idempotency_key
        all_headers.update(headers or {})
        return self._http(method, full_path, data, all_headers, timeout)

    def _http(self, method: str, path: str, data: bytes, headers: dict, timeout: float) -> SimResponse:
        split = urlsplit(self.root_url)
        connection = http.client.HTTPConnection(split.hostname, split.port, timeout=timeout)
        try:
            connection.request(
                method, path, body=data, headers={k: v for k, v in headers.items() if v is not None}
            )
            response = connection.getresponse()
            return SimResponse(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()
