"""Dedicated backend servers for fault tests: each on its own port and data directory.

The shared services (Redis 6379, NATS 4222, PostgreSQL 5432) are never touched: these are
new processes the test owns, so it can kill, freeze (SIGSTOP) and restart them at will.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import free_port


def wait_port(port: int, *, up: bool, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            if up:
                return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not come {'up' if up else 'down'}")


def stopped(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t")


class Instance:
    """One server process: ``start``, ``kill`` (SIGKILL), ``stop`` (SIGTERM), ``freeze``."""

    name = "server"

    def __init__(self, root: Path):
        self.port = free_port()
        self.dir = root / f"{self.name}-{self.port}"
        self.dir.mkdir(parents=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        log = (self.dir / "server.log").open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.port, up=True)

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def signal(self, sig: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def freeze(self) -> None:
        """SIGSTOP, and wait until every process is really stopped (state T)."""
        self.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(map(stopped, self.pids())):
            time.sleep(0.01)

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        if self.proc is None:
            return
        self.thaw()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        wait_port(self.port, up=False)


class RedisInstance(Instance):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        # Every acknowledged write is on disk before the reply: a SIGKILL loses nothing.
        return [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
        ]  # fmt: skip


class NatsInstance(Instance):
    name = "nats"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            "nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port),
            "-sd", str(self.dir / "store"),
        ]  # fmt: skip


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` system user."""
    if os.geteuid() != 0:
        return []
    import pwd

    user = pwd.getpwnam("postgres")
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]


class PostgresInstance(Instance):
    """A cluster of its own (initdb in a tmp dir), trust auth, database ``postgres``."""

    name = "postgres"

    def __init__(self, root: Path, bin_dir: Path):
        super().__init__(root)
        self.bin = bin_dir
        self.prefix = as_postgres_user()
        # Its own directory, which the server's user can own (the test's may be root's).
        self.home = Path(tempfile.mkdtemp(prefix="meshgate-pg-"))
        self.data = self.home / "data"
        if self.prefix:
            import pwd

            user = pwd.getpwnam("postgres")
            os.chown(self.home, user.pw_uid, user.pw_gid)
        initdb = [str(bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        subprocess.run(
            [*self.prefix, *initdb],
            check=True,
            capture_output=True,
        )

    def cleanup(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def command(self) -> list[str]:
        return [
            *self.prefix, str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-k", str(self.home), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on",
        ]  # fmt: skip

    def pids(self) -> list[int]:
        """The postmaster and every backend it forked: a frozen server is all of them."""
        if self.proc is None:
            return []
        out = [self.proc.pid]
        for status in glob.glob("/proc/[0-9]*/status"):
            try:
                text = Path(status).read_text()
            except OSError:
                continue
            if f"\nPPid:\t{self.proc.pid}\n" in text:
                out.append(int(status.split("/")[2]))
        return out

    def kill(self) -> None:
        # An immediate shutdown: like a crash, committed transactions replay from the WAL.
        self._end(signal.SIGQUIT)


def have(binary: str) -> bool:
    return shutil.which(binary) is not None
