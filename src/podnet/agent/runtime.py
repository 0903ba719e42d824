"""Containers as host processes: start, watch, log, stop, adopt, exec.

The one effectful module of the container layer. Per container it keeps, under
`<state_dir>/containers/<pod uid>/` (the agent puts `state_dir` on a tmpfs: these are
small files made on every start, see kernel/mounts.py):

- `<name>.json`: pid, start time (clock ticks from /proc/<pid>/stat, which tells a live
  container from a recycled PID), the spec, and the exit once known;
- `<name>.stdout`, `<name>.stderr`: FIFOs. The container opens them read-write, so its
  writes never fail with EPIPE; while the agent is down output waits in the pipe (1 MiB)
  and a restarted agent that adopts the container reopens the FIFOs and goes on pumping.
  Nothing is lost; lines buffered across a restart get the adoption time as timestamp.
- `<name>.log`: one line per output line, `<RFC3339Nano> <stdout|stderr> <text>`, written
  by the agent's pump; `<name>.log.1` is the previous instance's log (`--previous`).
  Logs go to `<log_dir>/<pod uid>_<name>.log[.1]` instead when a `log_dir` is given
  (the agent keeps them on disk, as the kubelet keeps /var/log/pods: they can grow).
  Lines longer than 16 KiB are cut into several; a last line without a newline is
  stored as a whole line (the format has no partial-line tag).
- `<name>.spec.json`: what the launcher reads.

A container whose spec asks for `stdin` gets a pipe, one asking for `tty` a terminal
(its master side is the log's source then, instead of the FIFOs); the agent holds our end
for `kubectl attach` (attach.py). Those ends die with the agent: after a restart such a
container reads EOF or is hung up, and its restart policy decides.

Containers are forked by a fork server (forkserver.py: one warm Python process per
Runtime, started on the first start and again if it dies), each in a new session (process
group = container pid). The container is the fork server's child, not ours: the server
reaps it and sends its waitpid status over the control socket; we hold a pidfd (passed
by the server, so it names the right process) for signals. `registry.k8s.io/pause` is not
exec'd at all: the forked child runs the pause loop itself. After the main process exits,
the rest of its process group is killed, as a container's would be.

A container we cannot hear about from a fork server (adopted after an agent restart, or
left when its fork server died) is watched through its pidfd: its exit code is read from
/proc/<pid>/stat while it is a zombie, and is otherwise unknown (137, reason
ContainerStatusUnknown). Containers outlive both the agent and the fork server.
`kubectl exec` still spawns launcher.py (it is not on the hot path) as our own child.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import pty
import shutil
import signal
import socket
import struct
import sys
import termios
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from podnet.agent import forkserver
from podnet.agent.attach import AttachSession, AttachTarget
from podnet.agent.fdio import resolve, write_all
from podnet.util import jsonutil
from podnet.util.clock import Clock, SystemClock
from podnet.util.files import write_file

logger = logging.getLogger("podnet.agent.runtime")

LAUNCHER = str(Path(__file__).with_name("launcher.py"))
FORKSERVER = str(Path(__file__).with_name("forkserver.py"))
PAUSE_MODULE = "podnet.agent.builtin.pause"
EXIT_UNKNOWN = 137
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20
MAX_LINE = 16 * 1024  # longer lines are cut, as containerd cuts them into partial lines
EXEC_DRAIN_SECONDS = 0.5
QUEUE_HIGH = 64  # exec output chunks buffered before reading pauses


# ---- pure helpers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    pod_uid: str
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    netns: str | None = None  # a path, e.g. /run/netns/podnet-c-0123456789ab
    hostname: str | None = None
    mounts: tuple[Mount, ...] = ()
    cwd: str | None = None
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] | None = None
    # Directories that get a fresh tmpfs, before the bind mounts. ("/run",) keeps mount
    # points like /var/run/secrets/kubernetes.io/serviceaccount off the host's /run.
    tmpfs: tuple[str, ...] = ()
    # The pod spec's stdin / stdinOnce / tty: a pipe (or a terminal) the agent holds, so
    # `kubectl attach` and `kubectl run -i[t]` can talk to the container's main process.
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "pod_uid": self.pod_uid,
            "name": self.name,
            "argv": list(self.argv),
            "env": [list(kv) for kv in self.env],
            "netns": self.netns,
            "hostname": self.hostname,
            "mounts": [[m.host_path, m.container_path, m.read_only] for m in self.mounts],
            "cwd": self.cwd,
            "uid": self.uid,
            "gid": self.gid,
            "groups": None if self.groups is None else list(self.groups),
            "tmpfs": list(self.tmpfs),
            "stdin": self.stdin,
            "stdin_once": self.stdin_once,
            "tty": self.tty,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContainerSpec:
        return cls(
            pod_uid=str(d["pod_uid"]),
            name=str(d["name"]),
            argv=tuple(d.get("argv") or ()),
            env=tuple((str(k), str(v)) for k, v in d.get("env") or ()),
            netns=d.get("netns"),
            hostname=d.get("hostname"),
            mounts=tuple(Mount(h, c, bool(ro)) for h, c, ro in d.get("mounts") or ()),
            cwd=d.get("cwd"),
            uid=d.get("uid"),
            gid=d.get("gid"),
            groups=None if d.get("groups") is None else tuple(d["groups"]),
            tmpfs=tuple(d.get("tmpfs") or ()),
            stdin=bool(d.get("stdin")),
            stdin_once=bool(d.get("stdin_once")),
            tty=bool(d.get("tty")),
        )


@dataclass(frozen=True, slots=True)
class ContainerState:
    pod_uid: str
    name: str
    pid: int
    started_at: dt.datetime
    start_ticks: int
    exit_code: int | None = None
    finished_at: dt.datetime | None = None
    reason: str = ""  # Completed, Error, StartError, ContainerStatusUnknown
    message: str = ""

    @property
    def running(self) -> bool:
        return self.exit_code is None


class StartError(Exception):
    """The launcher failed before exec; containerd reports this as StartError, 128."""

    reason = "StartError"
    exit_code = 128


class ExecError(Exception):
    """`kubectl exec` could not start the command."""


def rfc3339_nano(t: dt.datetime) -> str:
    """Fixed nine fractional digits, as the kubelet prints `--timestamps`."""
    t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond * 1000:09d}Z"


def format_log_line(t: dt.datetime, stream: str, text: bytes) -> bytes:
    return f"{rfc3339_nano(t)} {stream} ".encode() + text + b"\n"


def parse_log_line(line: bytes) -> tuple[dt.datetime, str, bytes]:
    """(time, stream, text) of one stored log line (without its newline)."""
    ts, stream, text = line.rstrip(b"\n").split(b" ", 2)
    raw = ts.decode().rstrip("Z")
    head, _, frac = raw.partition(".")
    when = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    when += dt.timedelta(microseconds=int((frac + "000000000")[:9]) // 1000)
    return when, stream.decode(), text


@dataclass(frozen=True, slots=True)
class ProcStat:
    state: str
    start_ticks: int
    exit_status: int  # waitpid-style, meaningful for zombies only


def parse_proc_stat(text: str) -> ProcStat:
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); starttime is field 22, exit_code field 52.
    exit_status = int(rest[49]) if len(rest) > 49 else 0
    return ProcStat(rest[0], int(rest[19]), exit_status)


def exit_code_of(status: int) -> int:
    """A waitpid status as a container exit code (128 + signal when killed)."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def reason_for(code: int) -> str:
    return "Completed" if code == 0 else "Error"


def in_process_builtin(argv: Sequence[str], python: str) -> str | None:
    """The fork server's built-in that stands in for `argv`, if any: the pause image's
    program with no arguments (its `-v` still runs the real module)."""
    if tuple(argv) == (python, "-m", PAUSE_MODULE):
        return "pause"
    return None


# ---- effectful part ---------------------------------------------------------------------


def _proc_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return parse_proc_stat(f.read())
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def _high_fd(fd: int) -> int:
    """A close-on-exec copy at fd >= 10, so posix_spawn's dup2 never maps a fd onto itself
    (which would leave close-on-exec set)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


def _set_nonblocking(fd: int) -> None:
    os.set_blocking(fd, False)


class _LogSink:
    """A container's log file, created when the container first prints something.

    Creating a file is the dearest step of a start on a journal-less ext4 (0.3-1 ms of
    kernel time scanning past recently deleted inodes, on the agent's event loop), and
    many containers (pause, most sidecars) never print. A container's log therefore
    exists once it has output, or once someone asks for it (`Runtime.ensure_log`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def write(self, data: bytes) -> None:
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                              0o640)
        os.write(self.fd, data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _LogPump:
    """Reads one FIFO and appends timestamped lines to the container's log file."""

    def __init__(self, source: str | Path | int, log: _LogSink, stream: str, clock: Clock,
                 tap: Callable[[str, bytes], None] | None = None) -> None:
        """`source`: a FIFO's path, or an fd we take over (a terminal's master side).
        `tap` sees every chunk as read, before line splitting (attached clients)."""
        if isinstance(source, int):
            self.fd = source
            _set_nonblocking(source)
        else:
            self.fd = os.open(source, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            with contextlib.suppress(OSError):
                fcntl.fcntl(self.fd, F_SETPIPE_SZ, PIPE_SIZE)
        self.log = log
        self.stream = stream
        self.clock = clock
        self.tap = tap
        self.partial = b""
        self.reading = True
        asyncio.get_running_loop().add_reader(self.fd, self._on_readable)

    def _on_readable(self) -> None:
        self.drain(max_chunks=16)  # a chatty container yields the loop after 1 MiB

    def drain(self, max_chunks: int | None = None) -> None:
        out = b""
        now = self.clock.now()
        n = 0
        while max_chunks is None or n < max_chunks:
            n += 1
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                # EIO: a terminal whose last slave closed. Stop polling it, or the loop
                # would spin on an fd that stays readable until the container is reaped.
                self._stop_reading()
                break
            if not chunk:
                self._stop_reading()
                break
            if self.tap is not None:
                self.tap(self.stream, chunk)
            data = self.partial + chunk
            lines = data.split(b"\n")
            self.partial = lines.pop()
            for line in lines:
                for i in range(0, max(len(line), 1), MAX_LINE):
                    out += format_log_line(now, self.stream, line[i : i + MAX_LINE])
            while len(self.partial) >= MAX_LINE:
                out += format_log_line(now, self.stream, self.partial[:MAX_LINE])
                self.partial = self.partial[MAX_LINE:]
        if out:
            self.log.write(out)

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            asyncio.get_running_loop().remove_reader(self.fd)

    def close(self, flush: bool = True) -> None:
        if self.fd < 0:
            return
        self._stop_reading()
        if flush:
            self.drain()
            if self.partial:
                self.log.write(format_log_line(self.clock.now(), self.stream, self.partial))
                self.partial = b""
        os.close(self.fd)
        self.fd = -1


@dataclass
class _Container:
    spec: ContainerSpec
    state: ContainerState
    pidfd: int = -1
    log: _LogSink | None = None
    spec_json: bytes = b""
    pumps: list[_LogPump] = field(default_factory=list)
    done: asyncio.Future[int] | None = None
    start_failed: bool = False
    on_exit: Callable[[ContainerState], None] | None = None
    # The fork server reports this container's exit (else its pidfd is watched).
    via_server: bool = False
    starting: bool = False  # until the launcher's error pipe has been read
    early_status: int | None = None  # an exit reported while still starting
    # Listeners and our end of stdin, for attach (stdin or tty containers hold an fd).
    attach: AttachTarget = field(default_factory=lambda: AttachTarget(tty=False,
                                                                      stdin_once=False))


class ForkServerGone(OSError):
    """The fork server exited before it answered a start."""


class _ForkServer:
    """Our end of forkserver.py (its docstring has the protocol)."""

    def __init__(
        self,
        python: str,
        on_exit: Callable[[_Container, int], None],
        on_lost: Callable[[list[_Container]], None],
    ) -> None:
        self.on_exit = on_exit
        self.on_lost = on_lost
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        their_fd = _high_fd(theirs.detach())
        try:
            self.pid = os.posix_spawn(
                python,
                [python, "-I", "-S", FORKSERVER, "--control-fd", "3"],
                {},
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                    # fd 2 stays ours, so a crash of the server shows in the agent's log.
                    (os.POSIX_SPAWN_DUP2, their_fd, 3),
                ],
                setsid=True,  # Ctrl-C at `podnet serve` is not for it
            )
        except OSError:
            ours.close()
            raise
        finally:
            os.close(their_fd)
        self.pidfd = os.pidfd_open(self.pid)
        self.sock = ours
        ours.setblocking(False)
        self.alive = True
        self.children: dict[int, _Container] = {}
        self._pending: dict[int, tuple[_Container, asyncio.Future[tuple[int, int, int]]]] = {}
        self._next_id = 0
        asyncio.get_running_loop().add_reader(ours.fileno(), self._readable)
        logger.debug("component=runtime event=forkserver-start pid=%d", self.pid)

    async def spawn(self, c: _Container, spec_path: str | Path, err_w: int,
                    stdio: tuple[str, int] | None = None, netns_fd: int = -1
                    ) -> tuple[int, int, int]:
        """Fork a container; (pid, start ticks, pidfd). `err_w` goes to the child, and so
        does `stdio`'s fd: its stdin ("stdin") or its terminal for fds 0-2 ("tty"), and
        `netns_fd`, the pod's network namespace (the server cannot see /run/netns)."""
        if not self.alive:
            raise ForkServerGone(errno.ECHILD, "the fork server has exited")
        loop = asyncio.get_running_loop()
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[tuple[int, int, int]] = loop.create_future()
        self._pending[rid] = (c, fut)
        request: dict[str, Any] = {"id": rid, "spec": str(spec_path)}
        fds = [err_w]
        if stdio is not None:
            request["stdio"] = stdio[0]
            fds.append(stdio[1])
        if netns_fd >= 0:
            request["netns"] = True
            fds.append(netns_fd)
        message = forkserver.encode(request)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds))]
        while True:
            try:
                self.sock.sendmsg([message], anc)
                break
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self.sock.fileno(), resolve, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(self.sock.fileno())
            except OSError as e:
                self._pending.pop(rid, None)
                self._lost()
                raise ForkServerGone(errno.ECHILD, f"the fork server has exited: {e}") from None
        return await fut

    def _readable(self) -> None:
        while self.alive:
            try:
                msg, anc, _, _ = self.sock.recvmsg(
                    4096, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return
            except OSError:
                msg, anc = b"", []
            fds = forkserver.received_fds(anc)
            if not msg:
                for fd in fds:
                    os.close(fd)
                self._lost()
                return
            try:
                self._dispatch(json.loads(msg), fds)
            except (ValueError, KeyError, TypeError):
                logger.warning("component=runtime event=forkserver-bad-message msg=%r", msg)
                for fd in fds:
                    os.close(fd)

    def _dispatch(self, m: dict[str, Any], fds: list[int]) -> None:
        if "exit" in m:
            c = self.children.pop(int(m["exit"]), None)
            if c is not None:
                self.on_exit(c, int(m["status"]))
            return
        c, fut = self._pending.pop(int(m["id"]))
        if "error" in m:
            if not fut.done():
                fut.set_exception(OSError(errno.EAGAIN, str(m["error"])))
            return
        pid, ticks, pidfd = int(m["pid"]), int(m["ticks"]), fds[0]
        if fut.done():  # the start was cancelled: nobody will track this container
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            os.close(pidfd)
            return
        self.children[pid] = c
        fut.set_result((pid, ticks, pidfd))

    def _lost(self) -> None:
        """The server has exited (or broke its pipe): fail what waits for it, and hand its
        containers back for pidfd watching."""
        if not self.alive:
            return
        self._disconnect("the fork server has exited")
        loop = asyncio.get_running_loop()
        orphans = list(self.children.values())
        self.children.clear()
        logger.warning(
            "component=runtime event=forkserver-lost pid=%d containers=%d", self.pid, len(orphans)
        )
        # Reap it once it has exited; it closed its socket on the way out.
        loop.add_reader(self.pidfd, self._reap)
        self.on_lost(orphans)

    def _disconnect(self, why: str) -> None:
        """Stop talking to the server: close our end, fail every start still waiting."""
        self.alive = False
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ForkServerGone(errno.ECHILD, why))
        self._pending.clear()

    def _reap(self) -> None:
        with contextlib.suppress(ChildProcessError):
            if os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED | os.WNOHANG) is None:
                return
        asyncio.get_running_loop().remove_reader(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = -1

    def close(self) -> None:
        """Stop the server now (its containers live on); reaps it before returning."""
        loop = asyncio.get_running_loop()
        if self.alive:
            self._disconnect("the fork server was stopped")
            self.children.clear()
        if self.pidfd >= 0:
            loop.remove_reader(self.pidfd)
            # SIGKILL bounds the wait below; the containers are in their own sessions.
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED)
            os.close(self.pidfd)
            self.pidfd = -1


class Runtime:
    """Runs containers as processes; see the module docstring for the on-disk layout."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        clock: Clock | None = None,
        on_exit: Callable[[ContainerState], None] | None = None,
        python: str = sys.executable,
        log_dir: Path | str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.clock = clock or SystemClock()
        self.on_exit = on_exit
        self.python = python
        self._containers: dict[tuple[str, str], _Container] = {}
        self._execs: set[ExecProcess] = set()
        self._server: _ForkServer | None = None
        self._roots_made = False

    # paths

    def pod_dir(self, pod_uid: str) -> Path:
        return self.state_dir / "containers" / pod_uid

    def log_path(self, pod_uid: str, name: str, previous: bool = False) -> Path:
        leaf = f"{name}.log.1" if previous else f"{name}.log"
        if self.log_dir is None:
            return self.pod_dir(pod_uid) / leaf
        # One flat directory: no directory per pod to make and remove on a disk
        # filesystem, where a mkdir can cost 0.25 ms or more (a journal-less ext4 scans
        # past every inode deleted in the last minutes). UIDs and container names hold
        # no "_", so the name is unambiguous.
        return self.log_dir / f"{pod_uid}_{leaf}"

    def _state_path(self, pod_uid: str, name: str) -> str:
        # A string: written twice per start, and pathlib's joins cost microseconds each.
        return f"{self.state_dir}/containers/{pod_uid}/{name}.json"

    def _make_roots(self) -> None:
        """The directories every pod's go in, once per Runtime. Specs hold the
        environment, Secrets included; logs what programs print: root only."""
        if self._roots_made:
            return
        for root in (self.state_dir / "containers", self.log_dir):
            if root is not None:
                root.mkdir(parents=True, exist_ok=True)
                root.chmod(0o700)
        self._roots_made = True

    def _new_log(self, pod_uid: str, name: str, restart: bool) -> _LogSink:
        """The log of a new instance of the container; the log of the instance before it
        is kept as `--previous` (empty if that one never printed)."""
        log = self.log_path(pod_uid, name)
        previous = self.log_path(pod_uid, name, previous=True)
        try:
            os.replace(log, previous)
        except FileNotFoundError:
            if restart:
                write_file(previous, "")
        return _LogSink(str(log))

    def ensure_log(self, pod_uid: str, name: str) -> Path | None:
        """The container's log path, the file made empty if it started and has printed
        nothing yet; None if it never started."""
        log = self.log_path(pod_uid, name)
        if not log.exists():
            if (pod_uid, name) not in self._containers:
                return None
            os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640))
        return log

    # queries

    def state(self, pod_uid: str, name: str) -> ContainerState | None:
        c = self._containers.get((pod_uid, name))
        return c.state if c else None

    def states(self, pod_uid: str | None = None) -> list[ContainerState]:
        """Every known container, or those of one pod."""
        return [
            c.state for (uid, _), c in self._containers.items() if pod_uid is None or uid == pod_uid
        ]

    # lifecycle

    async def start(
        self, spec: ContainerSpec, on_exit: Callable[[ContainerState], None] | None = None
    ) -> ContainerState:
        """Start the container; returns once its program has been exec'd. `on_exit` (and
        the Runtime's own) is called with the final state when it exits.

        Raises StartError (exit code 128 recorded) when the launcher fails first.
        """
        key = (spec.pod_uid, spec.name)
        old = self._containers.get(key)
        if old and old.state.running:
            raise RuntimeError(f"container {spec.name} of pod {spec.pod_uid} is running")
        pdir = self.pod_dir(spec.pod_uid)
        # Plain strings from here: pathlib's joins cost microseconds each, a dozen per start.
        base = f"{pdir}/{spec.name}"
        self._make_roots()
        fresh = False
        try:
            os.mkdir(pdir)
            fresh = True
        except FileExistsError:
            pass
        fifos: dict[str, str] = {}
        for stream in () if spec.tty else ("stdout", "stderr"):
            fifo = f"{base}.{stream}"
            if not fresh:  # a restart: the last instance's FIFO is still there
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(fifo)
            os.mkfifo(fifo, 0o600)
            fifos[stream] = fifo
        # What the launcher reads: the spec, plus its FIFOs and a built-in program if any.
        # The spec's JSON is made once and reused for every state file of the container.
        spec_json = jsonutil.dumps(spec.to_json())
        extra: dict[str, Any] = dict(fifos)
        builtin = in_process_builtin(spec.argv, self.python)
        if builtin is not None:
            extra["builtin"] = builtin
        spec_path = f"{base}.spec.json"
        write_file(spec_path, spec_json[:-1] + (b"," + jsonutil.dumps(extra)[1:] if extra
                                                else b"}"), atomic=True)

        log = self._new_log(spec.pod_uid, spec.name, restart=old is not None)
        c = _Container(spec, ContainerState(spec.pod_uid, spec.name, 0, self.clock.now(), 0),
                       spec_json=spec_json)
        c.on_exit = on_exit
        c.log = log
        stdio, child_end = self._stdio(c)
        # Open the FIFOs before the launcher does, so its O_RDWR open never races our mkfifo.
        c.pumps += [_LogPump(fifos[s], log, s, self.clock, c.attach.publish)
                    for s in fifos]
        err_r, err_w = os.pipe()
        c.starting = c.via_server = True
        netns_fd = -1
        try:
            if spec.netns:
                try:
                    netns_fd = os.open(spec.netns, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as e:
                    raise StartError(f"open {spec.netns}: {e.strerror}") from None
            pid, ticks, c.pidfd = await self._fork_server().spawn(
                c, spec_path, err_w, None if stdio is None else (stdio, child_end), netns_fd)
        except BaseException:
            os.close(err_r)
            for p in c.pumps:
                p.close(flush=False)
            c.attach.close_stdin()
            log.close()
            raise
        finally:
            os.close(err_w)
            for fd in (child_end, netns_fd):
                if fd >= 0:
                    os.close(fd)
        c.state = replace(c.state, pid=pid, start_ticks=ticks)
        c.done = asyncio.get_running_loop().create_future()
        self._containers[key] = c
        self._save(c)
        # Act on the exit only once we know whether the launcher failed, so a failed
        # start is reported by StartError alone, never also as an ordinary exit.
        message = ""
        try:
            message = (await _read_all(err_r)).decode(errors="replace").strip()
        finally:
            c.start_failed = bool(message)
            c.starting = False
            if c.early_status is not None:
                self._finish(c, c.early_status)
            elif not c.via_server:  # its fork server died meanwhile
                asyncio.get_running_loop().add_reader(c.pidfd, self._on_pidfd, c)
        if message:
            await asyncio.shield(c.done)
            message = message.removeprefix("launcher: ")
            c.state = replace(
                c.state, exit_code=StartError.exit_code, reason=StartError.reason, message=message
            )
            self._save(c)
            raise StartError(message)
        c.state = replace(c.state, started_at=self.clock.now())
        self._save(c)
        logger.debug(
            "component=runtime event=start pod=%s container=%s pid=%d",
            spec.pod_uid,
            spec.name,
            pid,
        )
        return c.state

    def _stdio(self, c: _Container) -> tuple[str | None, int]:
        """For a stdin or tty container: the fork server's stdio mode and the child's end
        (closed by the caller once sent). Our end goes to `c.attach` (and, for a terminal,
        the master also feeds the log, as the kubelet logs a tty container's output)."""
        spec = c.spec
        if spec.tty:
            master, slave = pty.openpty()
            os.set_inheritable(master, False)
            c.attach = AttachTarget(tty=True, stdin_once=spec.stdin_once,
                                    stdin_fd=fcntl.fcntl(master, fcntl.F_DUPFD_CLOEXEC, 0))
            assert c.log is not None
            c.pumps.append(_LogPump(master, c.log, "stdout", self.clock, c.attach.publish))
            return "tty", slave
        if spec.stdin:
            r, w = os.pipe()
            _set_nonblocking(w)
            c.attach = AttachTarget(tty=False, stdin_once=spec.stdin_once, stdin_fd=w)
            return "stdin", r
        return None, -1  # c.attach stays the default: no input side

    def attach(self, pod_uid: str, name: str, *, stdin: bool) -> AttachSession:
        """Join the container's main process (kubectl attach)."""
        c = self._containers.get((pod_uid, name))
        if c is None or not c.state.running or c.done is None:
            raise ExecError(f"container {name} is not running")
        if stdin and c.attach.stdin_fd < 0:
            if not (c.spec.stdin or c.spec.tty):
                raise ExecError(f"stdin is not enabled for container {name}: set "
                                "spec.containers[].stdin to true to attach to its input")
            raise ExecError(f"the stdin of container {name} is closed (stdinOnce, or the "
                            "agent restarted since it started)")
        return AttachSession(c.attach, c.done, stdin=stdin)

    def warm(self) -> None:
        """Start the fork server now rather than on the first container start."""
        self._fork_server()

    def _fork_server(self) -> _ForkServer:
        if self._server is None or not self._server.alive:
            self._server = _ForkServer(self.python, self._on_server_exit, self._on_server_lost)
        return self._server

    def _on_server_exit(self, c: _Container, status: int) -> None:
        if c.starting:
            c.early_status = status
        elif c.state.running:
            self._finish(c, status)

    def _on_server_lost(self, orphans: list[_Container]) -> None:
        """Containers whose fork server died are watched as adopted ones (init reaps them,
        so an exit code is known only if seen while a zombie)."""
        for c in orphans:
            c.via_server = False
            if not c.starting and c.state.running and c.pidfd >= 0:
                asyncio.get_running_loop().add_reader(c.pidfd, self._on_pidfd, c)

    def _close_fork_server(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def wait(self, pod_uid: str, name: str) -> int:
        c = self._containers[(pod_uid, name)]
        if c.state.exit_code is not None:
            return c.state.exit_code
        assert c.done is not None
        return await asyncio.shield(c.done)

    async def stop(self, pod_uid: str, name: str, grace_seconds: float) -> int:
        """SIGTERM to the main process, then after the grace period SIGKILL to the whole
        process group (containerd's StopContainer: the signal goes to the container's
        init; the kill takes everything)."""
        c = self._containers[(pod_uid, name)]
        if c.state.exit_code is not None:
            return c.state.exit_code
        assert c.done is not None
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(c.pidfd, signal.SIGTERM)
        try:
            return await asyncio.wait_for(asyncio.shield(c.done), max(grace_seconds, 0))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(c.state.pid, signal.SIGKILL)
            return await asyncio.shield(c.done)

    async def stop_all(self, grace_seconds: float) -> None:
        """Stop every running container (podnet down)."""
        running = [c.state for c in self._containers.values() if c.state.running]
        await asyncio.gather(*(self.stop(s.pod_uid, s.name, grace_seconds) for s in running))
        self._close_fork_server()  # a later start brings up a new one

    def adopt(self) -> list[ContainerState]:
        """Find the containers of a previous agent: running ones (same PID and start time)
        are watched again; dead ones are reported with what can be known of their exit."""
        found: list[ContainerState] = []
        root = self.state_dir / "containers"
        if not root.is_dir():
            return found
        for path in sorted(root.glob("*/*.json")):
            if path.name.endswith(".spec.json"):
                continue
            try:
                data = json.loads(path.read_text())
                spec = ContainerSpec.from_json(data["spec"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            key = (spec.pod_uid, spec.name)
            if key in self._containers:
                found.append(self._containers[key].state)
                continue
            state = ContainerState(
                spec.pod_uid,
                spec.name,
                int(data["pid"]),
                dt.datetime.fromisoformat(data["started_at"]),
                int(data["start_time_ticks"]),
                data.get("exit_code"),
                dt.datetime.fromisoformat(data["finished_at"]) if data.get("finished_at") else None,
                data.get("reason", ""),
                data.get("message", ""),
            )
            c = _Container(spec, state)
            self._containers[key] = c
            if state.exit_code is None:
                self._reattach(c)
            found.append(c.state)
        return found

    def _reattach(self, c: _Container) -> None:
        pid = c.state.pid
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = -1
        ps = _proc_stat(pid) if pidfd >= 0 else None
        if pidfd < 0 or ps is None or ps.start_ticks != c.state.start_ticks:
            if pidfd >= 0:
                os.close(pidfd)
            self._finish(c, None)
            return
        c.pidfd = pidfd
        c.done = asyncio.get_running_loop().create_future()
        pdir = self.pod_dir(c.spec.pod_uid)
        c.log = _LogSink(str(self.log_path(c.spec.pod_uid, c.spec.name)))
        for stream in ("stdout", "stderr"):
            fifo = pdir / f"{c.spec.name}.{stream}"
            if fifo.exists():
                c.pumps.append(_LogPump(fifo, c.log, stream, self.clock))
        asyncio.get_running_loop().add_reader(pidfd, self._on_pidfd, c)

    def _on_pidfd(self, c: _Container) -> None:
        status: int | None = None
        try:
            res = os.waitid(os.P_PIDFD, c.pidfd, os.WEXITED | os.WNOHANG)
            if res is None:
                return  # spurious wake-up
            exited = res.si_code == os.CLD_EXITED
            status = res.si_status << 8 if exited else res.si_status & 0x7F
        except ChildProcessError:
            # Not our child (adopted): a zombie still shows its exit status.
            ps = _proc_stat(c.state.pid)
            if ps is not None and ps.state == "Z" and ps.start_ticks == c.state.start_ticks:
                status = ps.exit_status
        self._finish(c, status)

    def _finish(self, c: _Container, status: int | None) -> None:
        loop = asyncio.get_running_loop()
        if c.pidfd >= 0:
            loop.remove_reader(c.pidfd)
            os.close(c.pidfd)
            c.pidfd = -1
        if c.state.pid > 0:
            # The rest of the container goes with its main process. The group id cannot
            # have been recycled while members of the group still exist.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(c.state.pid, signal.SIGKILL)
        for p in c.pumps:
            p.close()
        c.pumps = []
        c.attach.close_stdin()
        if c.log is not None:
            c.log.close()
        if status is None:
            code, reason = EXIT_UNKNOWN, "ContainerStatusUnknown"
            message = "The container could not be located when the agent restarted"
        else:
            code = exit_code_of(status)
            reason, message = reason_for(code), ""
        c.state = replace(
            c.state, exit_code=code, finished_at=self.clock.now(), reason=reason, message=message
        )
        self._save(c)
        if c.done is not None and not c.done.done():
            c.done.set_result(code)
        logger.debug(
            "component=runtime event=exit pod=%s container=%s pid=%d code=%d reason=%s",
            c.spec.pod_uid,
            c.spec.name,
            c.state.pid,
            code,
            reason,
        )
        if c.start_failed:
            return
        for callback in (c.on_exit, self.on_exit):
            if callback is not None:
                callback(c.state)

    def _save(self, c: _Container) -> None:
        s = c.state
        if not c.spec_json:  # the spec never changes: encode it once per container
            c.spec_json = jsonutil.dumps(c.spec.to_json())
        head = jsonutil.dumps({
            "pid": s.pid,
            "start_time_ticks": s.start_ticks,
            "started_at": s.started_at.isoformat(),
            "exit_code": s.exit_code,
            "finished_at": s.finished_at.isoformat() if s.finished_at else None,
            "reason": s.reason,
            "message": s.message,
        })
        write_file(self._state_path(s.pod_uid, s.name),
                   head[:-1] + b',"spec":' + c.spec_json + b"}", atomic=True)

    def forget(self, pod_uid: str, name: str) -> None:
        """Drop an exited container's record and files (its logs included)."""
        c = self._containers.get((pod_uid, name))
        if c and c.state.running:
            raise RuntimeError(f"container {name} of pod {pod_uid} is running")
        self._containers.pop((pod_uid, name), None)
        pdir = self.pod_dir(pod_uid)
        for suffix in (".json", ".spec.json", ".stdout", ".stderr"):
            with contextlib.suppress(FileNotFoundError):
                (pdir / f"{name}{suffix}").unlink()
        for previous in (False, True):
            with contextlib.suppress(FileNotFoundError):
                self.log_path(pod_uid, name, previous).unlink()

    def remove_pod(self, pod_uid: str) -> None:
        """Delete everything kept for a pod whose containers have all exited."""
        running = [k for k, c in self._containers.items() if k[0] == pod_uid and c.state.running]
        if running:
            raise RuntimeError(f"pod {pod_uid} still has running containers: {running}")
        for k in [k for k in self._containers if k[0] == pod_uid]:
            del self._containers[k]
        shutil.rmtree(self.pod_dir(pod_uid), ignore_errors=True)
        if self.log_dir is not None:
            for log in self.log_dir.glob(f"{pod_uid}_*"):
                with contextlib.suppress(FileNotFoundError):
                    log.unlink()

    def detach(self) -> None:
        """Stop watching (the agent is going away); containers keep running and a new
        Runtime over the same state dir adopts them."""
        loop = asyncio.get_running_loop()
        for c in self._containers.values():
            if c.pidfd >= 0:
                loop.remove_reader(c.pidfd)
                os.close(c.pidfd)
                c.pidfd = -1
            for p in c.pumps:
                p.close(flush=False)
            c.pumps = []
            c.attach.close_stdin()
            if c.log is not None:
                c.log.close()
        self._containers.clear()
        for e in list(self._execs):
            e.kill()
        # Its containers outlive it, reparented to init, as they outlive the agent.
        self._close_fork_server()

    # exec

    async def exec(
        self, pod_uid: str, name: str, argv: list[str], tty: bool = False, stdin: bool = False
    ) -> ExecProcess:
        """Run `argv` inside the container's net, UTS and mount namespaces, with the
        container's environment, user and working directory."""
        c = self._containers.get((pod_uid, name))
        if c is None or not c.state.running:
            raise ExecError(f"container {name} is not running")
        spec = c.spec.to_json() | {"argv": list(argv), "tty": tty}
        spec.pop("mounts", None)
        parent_fds: list[int] = []
        actions: list[tuple[Any, ...]] = []
        child_fds: list[int] = []
        if tty:
            master, slave = pty.openpty()
            slave = _high_fd(slave)
            master = _high_fd(master)
            child_fds.append(slave)
            actions += [(os.POSIX_SPAWN_DUP2, slave, fd) for fd in (0, 1, 2)]
            parent_fds = [master]
        else:
            if stdin:
                r, w = os.pipe()
                r, w = _high_fd(r), _high_fd(w)
                child_fds.append(r)
                actions.append((os.POSIX_SPAWN_DUP2, r, 0))
            else:
                w = -1
                actions.append((os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0))
            outs = []
            for fd in (1, 2):
                r2, w2 = os.pipe()
                r2, w2 = _high_fd(r2), _high_fd(w2)
                child_fds.append(w2)
                actions.append((os.POSIX_SPAWN_DUP2, w2, fd))
                outs.append(r2)
            parent_fds = [w, *outs]
        err_r, err_w = os.pipe()
        err_w = _high_fd(err_w)
        child_fds.append(err_w)
        actions.append((os.POSIX_SPAWN_DUP2, err_w, 3))
        try:
            pid = os.posix_spawn(
                self.python,
                [
                    self.python,
                    "-I",
                    "-S",
                    LAUNCHER,
                    "--error-fd",
                    "3",
                    "--enter-pid",
                    str(c.state.pid),
                    json.dumps(spec),
                ],
                {},
                file_actions=actions,
                setsid=True,
            )
        except OSError:
            for fd in [*child_fds, *parent_fds, err_r]:
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in child_fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        proc = ExecProcess(pid, tty, parent_fds)
        self._execs.add(proc)
        proc.on_done = self._execs.discard
        message = (await _read_all(err_r)).decode(errors="replace").strip()
        if message:
            await proc.wait()
            proc.close()
            raise ExecError(message.removeprefix("launcher: "))
        return proc


async def _read_all(fd: int) -> bytes:
    """Read a pipe to EOF without blocking the loop; closes it."""
    loop = asyncio.get_running_loop()
    _set_nonblocking(fd)
    chunks: list[bytes] = []
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                return
            if not chunk:
                loop.remove_reader(fd)
                if not done.done():
                    done.set_result(None)
                return
            chunks.append(chunk)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks)


class ExecProcess:
    """A command running inside a container (kubectl exec)."""

    def __init__(self, pid: int, tty: bool, fds: list[int]) -> None:
        loop = asyncio.get_running_loop()
        self.pid = pid
        self.tty = tty
        self.on_done: Callable[[ExecProcess], None] | None = None
        self._queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._exit: asyncio.Future[int] = loop.create_future()
        self._stdin = fds[0]
        self._outputs: dict[int, str] = {}
        if tty:
            self._outputs[fds[0]] = "stdout"
        else:
            self._outputs[fds[1]] = "stdout"
            self._outputs[fds[2]] = "stderr"
        for fd in {*fds} - {-1}:
            _set_nonblocking(fd)
        for fd in self._outputs:
            loop.add_reader(fd, self._readable, fd)
        self._pidfd = os.pidfd_open(pid)
        loop.add_reader(self._pidfd, self._exited)
        self._drain_timer: asyncio.TimerHandle | None = None
        self._ended = False
        self._paused: set[int] = set()

    def _readable(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: the pty's last slave closed
                raise
            data = b""
        if data:
            self._queue.put_nowait((self._outputs[fd], data))
            if self._queue.qsize() >= QUEUE_HIGH and not self._ended:
                # Nobody is reading fast enough: stop reading, so the command blocks.
                asyncio.get_running_loop().remove_reader(fd)
                self._paused.add(fd)
        else:
            self._close_output(fd)

    def _close_output(self, fd: int) -> None:
        if fd not in self._outputs:
            return
        asyncio.get_running_loop().remove_reader(fd)
        del self._outputs[fd]
        if fd == self._stdin:
            self._stdin = -1
        os.close(fd)
        if not self._outputs:
            self._end()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self._queue.put_nowait(None)

    def _exited(self) -> None:
        loop = asyncio.get_running_loop()
        reaped_elsewhere = False
        try:
            res = os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            res, reaped_elsewhere = None, True
        if res is None and not reaped_elsewhere:
            return  # spurious wake-up
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        code = EXIT_UNKNOWN
        if res is not None:
            code = res.si_status if res.si_code == os.CLD_EXITED else 128 + res.si_status
        if not self._exit.done():
            self._exit.set_result(code)
        # Output still in flight (a pty pushes it through a work queue) gets a moment;
        # background children that keep the streams open do not hold the session.
        self._drain_timer = loop.call_later(EXEC_DRAIN_SECONDS, self._force_end)
        if self.on_done:
            self.on_done(self)

    def _force_end(self) -> None:
        """Take what is left in the pipes (the command has exited, so this is bounded by
        the pipe buffers) and end the session."""
        for fd in list(self._outputs):
            while fd in self._outputs:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EAGAIN: nothing more for now; EIO: pty closed
                    break
                if not data:
                    break
                self._queue.put_nowait((self._outputs[fd], data))
            self._close_output(fd)
        self._end()

    async def read(self) -> tuple[str, bytes] | None:
        """The next output chunk as (stream, bytes); None once all output has ended."""
        if self._ended and self._queue.empty():
            return None
        item = await self._queue.get()
        if self._paused and self._queue.qsize() <= QUEUE_HIGH // 4:
            loop = asyncio.get_running_loop()
            for fd in self._paused:
                if fd in self._outputs:
                    loop.add_reader(fd, self._readable, fd)
            self._paused.clear()
        return item

    async def write(self, data: bytes) -> None:
        await write_all(lambda: self._stdin, data, "stdin is closed")

    def close_stdin(self) -> None:
        if self.tty:
            if self._stdin >= 0:
                with contextlib.suppress(OSError):
                    os.write(self._stdin, b"\x04")  # EOF for a terminal in canonical mode
        elif self._stdin >= 0:
            os.close(self._stdin)
            self._stdin = -1

    def resize(self, cols: int, rows: int) -> None:
        if self.tty and self._stdin >= 0:
            fcntl.ioctl(self._stdin, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def kill(self) -> None:
        if not self._exit.done():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def close(self) -> None:
        """Release the streams (after wait())."""
        for fd in list(self._outputs):
            self._close_output(fd)
        if not self.tty and self._stdin >= 0:
            os.close(self._stdin)
            self._stdin = -1
        self._end()
