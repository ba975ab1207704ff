"""Azurite: the lab's Azure Blob Storage, under the seeds' storage account name."""
from __future__ import annotations

import base64
import os
import secrets
import shutil
from pathlib import Path

from lab.ports import free_port, wait_for_port
from lab.procs import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
# Node 20 here: azurite 3.36+ needs Node 22, so setup.sh pins 3.35.0 into .tools/.
LOCAL_BIN = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"


def azurite_executable() -> str:
    if LOCAL_BIN.exists():
        return str(LOCAL_BIN)
    found = shutil.which("azurite-blob")
    if not found:
        raise FileNotFoundError("azurite-blob not found: run ./setup.sh (it installs azurite@3.35.0 into .tools/)")
    return found


class Azurite:
    def __init__(self, workdir: Path, account: str) -> None:
        self.workdir = workdir
        self.account = account
        self.key = base64.b64encode(secrets.token_bytes(64)).decode()
        self.port = 0
        self.proc: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"Azurite(account={self.account!r}, port={self.port})"

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def start(self) -> None:
        self.port = free_port()
        env = dict(os.environ, AZURITE_ACCOUNTS=f"{self.account}:{self.key}")
        argv = [
            azurite_executable(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--loose",
        ]
        # cwd: azurite drops debug files in its working directory; keep them in the lab's.
        self.proc = ManagedProcess("azurite", argv, self.workdir / "logs" / "azurite.log", env=env, cwd=self.workdir).start()
        try:
            wait_for_port(self.port, timeout=20)
        except TimeoutError:
            raise RuntimeError(f"azurite did not start:\n{self.proc.tail()}") from None

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
