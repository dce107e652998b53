"""Real processes for end-to-end tests: the bridge under gunicorn (as the Procfile runs it),
``bridge worker`` processes, and a TCP proxy that can cut the database off."""
from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bridge_env(settings, **extra) -> dict:
    """The environment a deployed bridge would get, from a test ``Settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PADDLE_", "BRIDGE_", "LICENSE_"))}
    env.update({
        "DATABASE_URL": settings.database_url,
        "BRIDGE_INSTANCE_DIR": str(settings.instance_dir),
        "STRIPE_WEBHOOK_SECRET": ",".join(settings.stripe_webhook_secrets),
        "PADDLE_WEBHOOK_SECRET": ",".join(settings.paddle_webhook_secrets),
        "STRIPE_API_KEY": settings.stripe_api_key or "",
        "PADDLE_API_KEY": settings.paddle_api_key or "",
        "BRIDGE_LEASE_SECONDS": str(settings.lease_seconds),
        "BRIDGE_JOB_BACKOFF_BASE": str(settings.job_backoff_base_seconds),
        "BRIDGE_JOB_BACKOFF_MAX": str(settings.job_backoff_max_seconds),
        "BRIDGE_WORKER_POLL": str(settings.worker_poll_seconds),
        "BRIDGE_PROVIDER_BACKOFF": str(settings.provider_backoff_multiplier),
        "BRIDGE_PROVIDER_BACKOFF_MAX": str(settings.provider_backoff_max_seconds),
        "BRIDGE_PROVIDER_TIMEOUT": str(settings.provider_timeout_seconds),
        "BRIDGE_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    for key, value in (("STRIPE_API_BASE", settings.stripe_api_base), ("PADDLE_API_BASE", settings.paddle_api_base),
                       ("LICENSE_WEBHOOK_URL", settings.license_webhook_url),
                       ("LICENSE_WEBHOOK_SECRET", settings.license_webhook_secret)):
        if value:
            env[key] = value
    env.update(extra)
    return env


class Process:
    def __init__(self, args, env, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=20)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class GunicornBridge(Process):
    """The web app exactly as the Procfile starts it (sync workers)."""

    def __init__(self, env, tmp_path: Path, workers: int = 2, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [str(BIN / "gunicorn"), "-c", "python:bridge.gunicorn_conf", "-w", str(workers), "-k", "sync",
                "-b", f"127.0.0.1:{self.port}", "--timeout", "30", "bridge.app:create_app()"]
        super().__init__(args, env, tmp_path / f"gunicorn-{self.port}.log")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                break
        raise RuntimeError("gunicorn did not start:\n" + self.log())


class WorkerProcess(Process):
    def __init__(self, env, tmp_path: Path, name: str, module: str | None = None):
        args = [sys.executable, "-m", module] if module else [str(BIN / "bridge"), "worker"]
        super().__init__(args, env, tmp_path / f"worker-{name}.log")


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``cut()`` drops every connection and refuses new
    ones (the database is unreachable), ``restore()`` accepts again."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = None
        self._stop = threading.Event()
        self.restore()

    def restore(self):
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(64)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self):
        listener, self._listener = self._listener, None
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone does not
        except OSError:
            pass
        listener.close()
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def close(self):
        if self._listener:
            self.cut()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a, b):
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass
