"""The embedded local Kafka broker: a real Apache Kafka (KRaft, one node) run by the project.

Maven fetches the broker jars once into ``infra/kafka/lib/`` (:func:`fetch_jars`). The broker keeps
everything under ``<data_dir>/kafka/``::

    cluster.id          the cluster id, generated once, so storage is formatted exactly once
    server.properties   rendered from infra/kafka/server.properties.template at each start
    data/               the log dirs (topics, offsets, KRaft metadata): survives restarts
    logs/server.log     the broker's log (log4j2, INFO); logs/jvm.log: the JVM's own output
    broker.pid          the pid of the running JVM

:func:`start` returns once the client port accepts connections; :func:`stop` sends SIGTERM to the
recorded pid (only if it is our broker's JVM), waits, and SIGKILLs after a grace period.
:func:`ensure_broker` and :func:`local_broker` are what the twin's commands use: they do nothing
when a cluster is configured (``TWIN_KAFKA_BOOTSTRAP``).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template

from streams.settings import Settings

__all__ = [
    "INFRA_DIR",
    "BrokerError",
    "BrokerStatus",
    "PortInUseError",
    "StartResult",
    "broker_status",
    "ensure_broker",
    "fetch_jars",
    "jars_present",
    "local_broker",
    "start_broker",
    "stop_broker",
]

#: The broker recipe: pom.xml, server.properties.template, log4j2.xml; jars land in lib/.
INFRA_DIR = Path(__file__).resolve().parent.parent / "infra" / "kafka"

_STOP_GRACE_S = 30.0
_KILL_WAIT_S = 10.0
_POLL_S = 0.1
_LOG_TAIL_LINES = 40

Progress = Callable[[str], None]


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BrokerError(RuntimeError):
    """The local broker could not be fetched, started or stopped."""


class PortInUseError(BrokerError):
    """A port the local broker needs is taken by some other process."""


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What ``twin broker status`` reports."""

    running: bool
    pid: int | None
    bootstrap: str
    port: int
    controller_port: int
    broker_dir: Path
    log_file: Path


@dataclass(frozen=True, slots=True)
class StartResult:
    status: BrokerStatus
    already_running: bool


@dataclass(frozen=True, slots=True)
class _Paths:
    root: Path

    @property
    def cluster_id(self) -> Path:
        return self.root / "cluster.id"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def meta(self) -> Path:
        return self.data / "meta.properties"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"

    @property
    def jvm_log(self) -> Path:
        return self.logs / "jvm.log"

    @property
    def pid(self) -> Path:
        return self.root / "broker.pid"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


def _paths(settings: Settings) -> _Paths:
    return _Paths(settings.broker_dir.resolve())


# -- jars ---------------------------------------------------------------------------------------


def _lib_dir(infra_dir: Path) -> Path:
    return infra_dir / "lib"


def _pom_digest(infra_dir: Path) -> str:
    return hashlib.sha256((infra_dir / "pom.xml").read_bytes()).hexdigest()


def jars_present(infra_dir: Path = INFRA_DIR) -> bool:
    """True when ``lib/`` holds a complete fetch for the current pom.xml."""
    stamp = _lib_dir(infra_dir) / ".pom.sha256"
    return stamp.is_file() and stamp.read_text().strip() == _pom_digest(infra_dir)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_jars(infra_dir: Path = INFRA_DIR, *, progress: Progress = _to_stderr) -> Path:
    """Have Maven copy the broker jars into ``infra_dir/lib`` unless they are there already.

    Maven writes into a scratch folder that replaces ``lib/`` only when complete, so an
    interrupted fetch never leaves a half-filled ``lib/``.
    """
    lib = _lib_dir(infra_dir)
    if jars_present(infra_dir):
        return lib
    work = infra_dir / "target"
    with _file_lock(work / "fetch.lock"):
        if jars_present(infra_dir):  # another process fetched them while we waited
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven (mvn) is not on PATH; it is needed once to fetch the Kafka broker jars "
                f"into {lib}. Install Maven, or set TWIN_KAFKA_BOOTSTRAP to use a running cluster."
            )
        scratch = work / f"lib-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        progress(f"fetching the Kafka broker jars with Maven into {lib} (once) ...")
        command = [
            mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(infra_dir / "pom.xml"),
            "dependency:copy-dependencies", f"-Dlib.dir={scratch}",
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not any(scratch.glob("kafka_2.13-*.jar")):
                output = _tail_text((done.stdout + done.stderr).splitlines())
                raise BrokerError(
                    f"Maven could not fetch the Kafka jars (exit {done.returncode}):\n{output}"
                )
            (scratch / ".pom.sha256").write_text(_pom_digest(infra_dir) + "\n")
            shutil.rmtree(lib, ignore_errors=True)
            scratch.rename(lib)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        size_mb = sum(f.stat().st_size for f in lib.iterdir()) / 1e6
        progress(f"fetched {sum(1 for _ in lib.glob('*.jar'))} jars ({size_mb:.0f} MB)")
        return lib


# -- process identity -----------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str] | None:
    """The process's argv, or None if there is no such (live) process."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return None  # a zombie: dead, only waiting to be reaped
            raw = (proc / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return None
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    done = subprocess.run(  # no /proc (macOS): ask ps
        ["ps", "-o", "stat=,command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    line = done.stdout.strip()
    if done.returncode != 0 or not line or line.startswith("Z"):
        return None
    return line.split()[1:]


def _is_our_broker(pid: int, paths: _Paths) -> bool:
    """True if ``pid`` is a live java process running kafka.Kafka with this data dir's config."""
    argv = _cmdline(pid)
    if not argv:
        return False
    return (
        Path(argv[0]).name.startswith("java")
        and "kafka.Kafka" in argv
        and str(paths.config) in argv
    )


def _read_pid(paths: _Paths) -> int | None:
    try:
        return int(paths.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _running_pid(paths: _Paths) -> int | None:
    """The recorded pid if it is our live broker; a stale pid file is removed."""
    pid = _read_pid(paths)
    if pid is None:
        return None
    if _is_our_broker(pid, paths):
        return pid
    _reap(pid)
    paths.pid.unlink(missing_ok=True)
    return None


# Brokers this Python process started: reaped on stop so they do not linger as zombies.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def _alive(pid: int, paths: _Paths) -> bool:
    _reap(pid)
    return _is_our_broker(pid, paths)


# -- ports ----------------------------------------------------------------------------------------


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a listening socket could bind ``host:port`` now (as the JVM will, SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


# -- config and storage ---------------------------------------------------------------------------


def _configured_ports(paths: _Paths) -> tuple[int, int] | None:
    """(client port, controller port) from the rendered server.properties, if any."""
    try:
        lines = paths.config.read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        if line.startswith("listeners="):
            ports = {
                item.split("://", 1)[0]: int(item.rsplit(":", 1)[1])
                for item in line.removeprefix("listeners=").split(",")
            }
            return ports["PLAINTEXT"], ports["CONTROLLER"]
    return None


def _render_config(settings: Settings, paths: _Paths, infra_dir: Path) -> None:
    template = Template((infra_dir / "server.properties.template").read_text())
    text = template.substitute(
        port=settings.broker_port,
        controller_port=settings.broker_controller_port,
        log_dirs=str(paths.data),
    )
    paths.config.write_text(text)


def _new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, URL-safe base64 without padding (22 characters).

    Like Kafka's own ``Uuid.randomUuid``, never one starting with "-": command-line tools
    would take it for an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _cluster_id(paths: _Paths) -> str:
    """This data dir's cluster id, created once and kept (also recovered from meta.properties)."""
    if paths.cluster_id.is_file():
        return paths.cluster_id.read_text().strip()
    cluster_id = None
    if paths.meta.is_file():
        for line in paths.meta.read_text().splitlines():
            if line.startswith("cluster.id="):
                cluster_id = line.split("=", 1)[1].strip()
    cluster_id = cluster_id or _new_cluster_id()
    paths.cluster_id.write_text(cluster_id + "\n")
    return cluster_id


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "java is not on PATH: the local Kafka broker needs a JDK 17+. "
            "Install one, or set TWIN_KAFKA_BOOTSTRAP to use a running cluster."
        )
    return java


def _jvm_base(java: str, heap: str, paths: _Paths, infra_dir: Path) -> list[str]:
    return [
        java,
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={paths.logs}",
        f"-Dlog4j2.configurationFile={infra_dir / 'log4j2.xml'}",
        "-cp",
        f"{_lib_dir(infra_dir)}/*",
    ]


def _format_storage(java: str, paths: _Paths, infra_dir: Path) -> None:
    """Format the KRaft storage, only if it has never been formatted."""
    if paths.meta.is_file():
        return
    command = [
        *_jvm_base(java, "256m", paths, infra_dir),
        "kafka.tools.StorageTool", "format",
        f"--cluster-id={_cluster_id(paths)}",
        f"--config={paths.config}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = _tail_text((done.stdout + done.stderr).splitlines())
        raise BrokerError(f"formatting the broker storage in {paths.data} failed:\n{output}")


# -- start / stop / status -------------------------------------------------------------------------


def _tail_text(lines: list[str], n: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(lines[-n:]) if lines else "(no output)"


def _log_tail(paths: _Paths) -> str:
    parts = []
    for log in (paths.jvm_log, paths.server_log):
        if log.is_file() and log.stat().st_size:
            lines = log.read_text(errors="replace").splitlines()
            parts.append(f"--- last lines of {log} ---\n{_tail_text(lines)}")
    return "\n".join(parts) or f"(the broker wrote no log in {paths.logs})"


def _status(settings: Settings, paths: _Paths, pid: int | None) -> BrokerStatus:
    port, controller_port = settings.broker_port, settings.broker_controller_port
    if pid is not None:  # report what the running broker actually listens on
        port, controller_port = _configured_ports(paths) or (port, controller_port)
    return BrokerStatus(
        running=pid is not None,
        pid=pid,
        bootstrap=f"127.0.0.1:{port}",
        port=port,
        controller_port=controller_port,
        broker_dir=paths.root,
        log_file=paths.server_log,
    )


def broker_status(settings: Settings) -> BrokerStatus:
    """Whether this data dir's local broker is running, and where."""
    paths = _paths(settings)
    return _status(settings, paths, _running_pid(paths) if paths.root.is_dir() else None)


def start_broker(
    settings: Settings, *, infra_dir: Path = INFRA_DIR, progress: Progress = _to_stderr
) -> StartResult:
    """Start the local broker unless it already runs; return once its client port accepts.

    Fetches the jars if missing and formats storage if never formatted. On failure (the JVM
    exits, or the port does not open within ``broker_start_timeout_s``) the JVM is killed and
    :class:`BrokerError` carries the tail of the broker's log.
    """
    paths = _paths(settings)
    paths.root.mkdir(parents=True, exist_ok=True)
    with _file_lock(paths.lock):
        pid = _running_pid(paths)
        if pid is not None:
            return StartResult(_status(settings, paths, pid), already_running=True)

        java = _java()
        for name, port in (
            ("TWIN_BROKER_PORT", settings.broker_port),
            ("TWIN_BROKER_CONTROLLER_PORT", settings.broker_controller_port),
        ):
            if not _port_free(port):
                raise PortInUseError(
                    f"port {port} on 127.0.0.1 is already in use by another process (not the "
                    f"twin's broker in {paths.root}); free it or choose another with {name}"
                )
        fetch_jars(infra_dir, progress=progress)
        paths.data.mkdir(exist_ok=True)
        paths.logs.mkdir(exist_ok=True)
        _render_config(settings, paths, infra_dir)
        _format_storage(java, paths, infra_dir)

        command = [
            *_jvm_base(java, settings.broker_heap, paths, infra_dir),
            "kafka.Kafka",
            str(paths.config),
        ]
        with paths.jvm_log.open("ab") as jvm_log:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=jvm_log,
                stderr=subprocess.STDOUT,
                cwd=paths.root,
                start_new_session=True,  # its own process group: no terminal signals reach it
            )
        _children[child.pid] = child
        paths.pid.write_text(f"{child.pid}\n")
        try:
            _wait_until_accepting(child, settings, paths)
        except BaseException:
            _kill_group(child.pid)
            child.wait()
            _children.pop(child.pid, None)
            paths.pid.unlink(missing_ok=True)
            raise
        return StartResult(_status(settings, paths, child.pid), already_running=False)


def _wait_until_accepting(
    child: subprocess.Popen[bytes], settings: Settings, paths: _Paths
) -> None:
    deadline = time.monotonic() + settings.broker_start_timeout_s
    while True:
        code = child.poll()
        if code is not None:
            raise BrokerError(
                f"the Kafka broker exited with code {code} while starting\n{_log_tail(paths)}"
            )
        if _accepts(settings.broker_port):
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"the Kafka broker did not accept connections on port {settings.broker_port} "
                f"within {settings.broker_start_timeout_s:g} s (TWIN_BROKER_START_TIMEOUT_S)\n"
                f"{_log_tail(paths)}"
            )
        time.sleep(_POLL_S)


def _kill_group(pid: int) -> None:
    """SIGKILL the broker's process group (it is the group leader: start_new_session)."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def _wait_gone(pid: int, paths: _Paths, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid, paths):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


def stop_broker(settings: Settings, *, grace_s: float = _STOP_GRACE_S) -> int | None:
    """Stop this data dir's local broker: SIGTERM, wait ``grace_s``, then SIGKILL.

    Only the recorded pid is signalled, and only if it is our broker's JVM. Returns the pid
    that was stopped, or None if none was running.
    """
    paths = _paths(settings)
    if not paths.root.is_dir():
        return None
    with _file_lock(paths.lock):
        pid = _running_pid(paths)
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, paths, grace_s):
            _kill_group(pid)
            if not _wait_gone(pid, paths, _KILL_WAIT_S):
                raise BrokerError(f"the Kafka broker (pid {pid}) survived SIGKILL")
        child = _children.pop(pid, None)
        if child is not None:
            child.wait()
        paths.pid.unlink(missing_ok=True)
        return pid


def ensure_broker(settings: Settings, *, progress: Progress = _to_stderr) -> str:
    """The bootstrap servers to use: the configured cluster, else the local broker (started now
    if it is not running; it keeps running afterwards)."""
    if settings.kafka_bootstrap is not None:
        return settings.kafka_bootstrap
    return start_broker(settings, progress=progress).status.bootstrap


@contextlib.contextmanager
def local_broker(settings: Settings, *, progress: Progress = _to_stderr) -> Iterator[str]:
    """Yield the bootstrap servers; a local broker started here is stopped on exit, also on
    exceptions. A configured cluster, or a local broker that was already running, is left
    alone."""
    if settings.kafka_bootstrap is not None:
        yield settings.kafka_bootstrap
        return
    result = start_broker(settings, progress=progress)
    try:
        yield result.status.bootstrap
    finally:
        if not result.already_running:
            stop_broker(settings)
