"""Real Prometheus Alertmanager and Pushgateway (Debian's packages, set-up installs them) for tests.

Each runs as a child process on a free loopback port with a temporary configuration and storage,
and is stopped (SIGTERM, then SIGKILL) when its `with` block ends: nothing is left behind. The
Alertmanager runs without clustering (`--cluster.listen-address=` empty: a lone instance that
gossips with no peers and binds no cluster port).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from lab.ports import free_port, wait_for_port

ALERTMANAGER_CONFIG = """\
route:
  receiver: nobody
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: nobody
"""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (./setup.sh installs Debian's package)")
    return path


@contextmanager
def _process(args: list[str], port: int, ready_path: str, workdir: Path) -> Iterator[str]:
    with open(workdir / "server.log", "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_port(port, timeout=20)
            for _ in range(100):  # listening is not ready: wait for its readiness endpoint
                try:
                    if httpx.get(url + ready_path, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"{args[0]} exited {proc.returncode}: {(workdir / 'server.log').read_text()[-2000:]}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextmanager
def alertmanager() -> Iterator[str]:
    """A running Alertmanager; yields its base URL (the v2 API is under /api/v2)."""
    with tempfile.TemporaryDirectory(prefix="dr-drill-alertmanager-") as tmp:
        work = Path(tmp)
        (work / "alertmanager.yml").write_text(ALERTMANAGER_CONFIG)
        port = free_port()
        args = [_binary("prometheus-alertmanager"), f"--config.file={work / 'alertmanager.yml'}",
                f"--storage.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
        with _process(args, port, "/-/ready", work) as url:
            yield url


@contextmanager
def pushgateway() -> Iterator[str]:
    """A running Pushgateway (in-memory: no persistence file); yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="dr-drill-pushgateway-") as tmp:
        work = Path(tmp)
        port = free_port()
        args = [_binary("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}"]
        with _process(args, port, "/-/ready", work) as url:
            yield url
