"""Containers as processes in a real network namespace: what `kubectl logs` and
`kubectl exec` would show, stop and adoption, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from podnet.agent import podfiles
from podnet.agent.runtime import (
    PAUSE_MODULE,
    ContainerSpec,
    ExecError,
    ExecProcess,
    Mount,
    Runtime,
    StartError,
    parse_log_line,
)

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
POD = {
    "metadata": {"name": "web-0", "namespace": "shop", "uid": "rt-test-uid"},
    "spec": {"containers": [{"name": "main"}]},
}


@dataclass
class Sandbox:
    netns: str
    state_dir: Path
    files: Path
    pids: set[int] = field(default_factory=set)

    def spec(self, name: str, script: str, **kw: object) -> ContainerSpec:
        mounts = (
            Mount(str(self.files / "resolv.conf"), "/etc/resolv.conf", True),
            Mount(str(self.files / "hosts"), "/etc/hosts"),
            Mount(str(self.files / "hostname"), "/etc/hostname"),
            Mount(str(self.files / "sa"), SA_DIR, True),
        )
        args: dict[str, object] = {
            "env": (("PATH", PATH), ("FOO", "bar baz")),
            "netns": f"/run/netns/{self.netns}",
            "hostname": podfiles.hostname(POD),
            "mounts": mounts,
            "tmpfs": ("/run", "/tmp"),
        } | kw
        return ContainerSpec("rt-test-uid", name, ("sh", "-c", script), **args)  # type: ignore[arg-type]


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def _alive(pid: int) -> bool:
    """Running, that is: a dead container whose fork server has gone is reaped by init,
    which may take a moment; until then it is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    name = f"podnet-rt-test-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    root = Path(tempfile.mkdtemp(prefix="podnet-rt-test-"))
    files = root / "files"
    (files / "sa").mkdir(parents=True)
    (files / "resolv.conf").write_text(podfiles.resolv_conf(POD))
    (files / "hosts").write_text(podfiles.hosts_file(POD, ["10.244.0.5"]))
    (files / "hostname").write_text(podfiles.hostname_file(POD))
    for fname, data in podfiles.service_account_files("tok", b"CA", "shop").items():
        (files / "sa" / fname).write_bytes(data)
    box = Sandbox(name, root / "state", files)
    # With a private /run, the ServiceAccount mount point is never made on the host.
    # (/var/run is a link to /run.)
    host_sa_dirs = [d for d in [Path(SA_DIR), *Path(SA_DIR).parents][:3] if not d.exists()]
    try:
        yield box
    finally:
        leftovers = [pid for pid in box.pids if _alive(pid)]
        for pid in leftovers:  # only PIDs this test started
            os.kill(pid, 9)
        subprocess.run(["ip", "netns", "delete", name], check=False)
        shutil.rmtree(root, ignore_errors=True)
        assert not any(d.exists() for d in host_sa_dirs)
        assert leftovers == [], f"processes outlived the test: {leftovers}"
        assert name not in _netns_list()
        assert not root.exists()


@pytest.fixture
async def runtime(sandbox: Sandbox) -> AsyncIterator[Runtime]:
    rt = Runtime(sandbox.state_dir)
    yield rt
    for s in rt.states():
        sandbox.pids.add(s.pid)
        if s.running:
            await rt.stop(s.pod_uid, s.name, 0)
    server = rt._server
    rt.detach()
    # The fork server is stopped and reaped with the Runtime.
    assert rt._server is None
    assert server is None or not Path(f"/proc/{server.pid}").exists()


def log_texts(rt: Runtime, name: str, previous: bool = False) -> list[tuple[str, str]]:
    path = rt.log_path("rt-test-uid", name, previous)
    raw = path.read_bytes().splitlines() if path.exists() else []  # made at first output
    return [(stream, text.decode()) for _, stream, text in map(parse_log_line, raw)]


async def wait_for_log(rt: Runtime, name: str, text: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while (("stdout", text) not in log_texts(rt, name)) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert ("stdout", text) in log_texts(rt, name)


async def collect(proc: ExecProcess) -> tuple[bytes, bytes, int]:
    out, err = b"", b""
    while (chunk := await proc.read()) is not None:
        if chunk[0] == "stdout":
            out += chunk[1]
        else:
            err += chunk[1]
    return out, err, await proc.wait()


async def test_container_sees_the_pods_files_env_and_network(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    host_resolv = Path("/etc/resolv.conf").read_bytes()
    script = (
        "cat /etc/resolv.conf; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace;"
        " echo; hostname; echo $FOO; ip -4 addr show lo; echo oops >&2;"
        " ls -A /run /tmp; echo x > /etc/resolv.conf"
    )
    state = await runtime.start(sandbox.spec("main", script))
    sandbox.pids.add(state.pid)
    assert await runtime.wait("rt-test-uid", "main") == 2
    texts = log_texts(runtime, "main")
    stdout = [t for stream, t in texts if stream == "stdout"]
    stderr = [t for stream, t in texts if stream == "stderr"]
    assert stdout[:8] == [
        "search shop.svc.cluster.local svc.cluster.local cluster.local",
        "nameserver 10.96.0.10",
        "options ndots:5",
        "shop",
        "web-0",
        "bar baz",
        "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default "
        "qlen 1000",
        "    inet 127.0.0.1/8 scope host lo",
    ]
    # Private /run and /tmp: only what podnet mounted there.
    assert stdout[-4:] == ["/run:", "secrets", "", "/tmp:"]
    assert stderr == ["oops", "sh: 1: cannot create /etc/resolv.conf: Read-only file system"]
    assert not any("eth0" in t or "10.250." in t for _, t in texts)  # not the host's netns
    stamps = [parse_log_line(line)[0] for line in
              runtime.log_path("rt-test-uid", "main").read_bytes().splitlines()]  # fmt: skip
    assert stamps == sorted(stamps)
    assert Path("/etc/resolv.conf").read_bytes() == host_resolv
    final = runtime.state("rt-test-uid", "main")
    assert final is not None and (final.exit_code, final.reason) == (2, "Error")


async def test_restart_keeps_the_previous_log(sandbox: Sandbox, runtime: Runtime) -> None:
    for word in ("first", "second"):
        s = await runtime.start(sandbox.spec("main", f"echo {word}; exit 3"))
        sandbox.pids.add(s.pid)
        assert await runtime.wait("rt-test-uid", "main") == 3
    assert log_texts(runtime, "main") == [("stdout", "second")]
    assert log_texts(runtime, "main", previous=True) == [("stdout", "first")]
    assert runtime.state("rt-test-uid", "main").reason == "Error"  # type: ignore[union-attr]


async def test_a_silent_container_has_an_empty_log_and_previous_log(
        sandbox: Sandbox, runtime: Runtime) -> None:
    # The file is made at the first output, or when asked for: a container that never
    # printed still shows an empty log, and after a restart an empty previous log.
    assert runtime.ensure_log("rt-test-uid", "quiet") is None  # never started
    for _ in range(2):
        s = await runtime.start(sandbox.spec("quiet", "exit 1"))
        sandbox.pids.add(s.pid)
        assert await runtime.wait("rt-test-uid", "quiet") == 1
    assert not runtime.log_path("rt-test-uid", "quiet").exists()
    assert runtime.log_path("rt-test-uid", "quiet", previous=True).read_bytes() == b""
    log = runtime.ensure_log("rt-test-uid", "quiet")
    assert log is not None and log.read_bytes() == b""


async def test_start_error(sandbox: Sandbox, runtime: Runtime) -> None:
    spec = ContainerSpec("rt-test-uid", "bad", ("no-such-program",), env=(("PATH", PATH),))
    with pytest.raises(StartError, match='exec: "no-such-program": executable file not found'):
        await runtime.start(spec)
    state = runtime.state("rt-test-uid", "bad")
    assert state is not None
    sandbox.pids.add(state.pid)
    assert (state.exit_code, state.reason) == (128, "StartError")


async def test_run_as_user(sandbox: Sandbox, runtime: Runtime) -> None:
    script = f"id -u; id -g; pwd; cat {SA_DIR}/namespace"
    s = await runtime.start(sandbox.spec("main", script, uid=65534, gid=65533, cwd="/tmp"))
    sandbox.pids.add(s.pid)
    assert await runtime.wait("rt-test-uid", "main") == 0
    assert log_texts(runtime, "main") == [
        ("stdout", "65534"),
        ("stdout", "65533"),
        ("stdout", "/tmp"),
        ("stdout", "shop"),  # the bind-mounted files are readable as a non-root user
    ]


async def test_exec_with_and_without_tty(sandbox: Sandbox, runtime: Runtime) -> None:
    s = await runtime.start(sandbox.spec("main", "echo up; exec sleep 60"))
    sandbox.pids.add(s.pid)
    await wait_for_log(runtime, "main", "up")

    proc = await runtime.exec("rt-test-uid", "main", ["sh", "-c", "hostname; head -1 "
                              "/etc/resolv.conf; echo $FOO; echo no >&2; exit 7"])  # fmt: skip
    sandbox.pids.add(proc.pid)
    out, err, code = await collect(proc)
    assert out.decode().splitlines() == [
        "web-0",
        "search shop.svc.cluster.local svc.cluster.local cluster.local",
        "bar baz",
    ]
    assert (err, code) == (b"no\n", 7)

    proc = await runtime.exec("rt-test-uid", "main", ["cat"], stdin=True)
    sandbox.pids.add(proc.pid)
    await proc.write(b"piped\n")
    proc.close_stdin()
    assert await collect(proc) == (b"piped\n", b"", 0)

    proc = await runtime.exec(
        "rt-test-uid", "main", ["sh", "-c", "read x; stty size; echo got $x; exit 4"],
        tty=True, stdin=True,
    )  # fmt: skip
    sandbox.pids.add(proc.pid)
    proc.resize(cols=120, rows=40)
    await proc.write(b"hello\n")
    out, err, code = await collect(proc)
    assert out.split(b"\r\n") == [b"hello", b"40 120", b"got hello", b""]  # echo, then output
    assert (err, code) == (b"", 4)

    with pytest.raises(ExecError, match='exec: "nope": executable file not found'):
        await runtime.exec("rt-test-uid", "main", ["nope"])


async def read_until(proc: ExecProcess, needle: bytes, timeout: float = 5) -> bytes:
    seen = b""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            chunk = await proc.read()
            assert chunk is not None, seen
            seen += chunk[1]
    return seen


async def test_attach_to_a_stdin_container_survives_detach_and_honours_stdin_once(
        sandbox: Sandbox, runtime: Runtime) -> None:
    script = 'echo up; while read l; do echo "got $l"; done; echo eof; exit 3'
    s = await runtime.start(sandbox.spec("main", script, stdin=True))
    sandbox.pids.add(s.pid)
    await wait_for_log(runtime, "main", "up")
    first = runtime.attach("rt-test-uid", "main", stdin=True)
    await first.write(b"one\n")
    assert b"got one" in await read_until(first, b"got one")
    first.kill()  # the client went away: a detach, not the end of the container
    assert await first.read() is None and await first.wait() == 0
    second = runtime.attach("rt-test-uid", "main", stdin=True)
    await second.write(b"two\n")
    assert b"got two" in await read_until(second, b"got two")
    assert runtime.state("rt-test-uid", "main").running  # type: ignore[union-attr]
    await runtime.stop("rt-test-uid", "main", 0)

    s = await runtime.start(sandbox.spec("once", script, stdin=True, stdin_once=True))
    sandbox.pids.add(s.pid)
    await wait_for_log(runtime, "once", "up")
    session = runtime.attach("rt-test-uid", "once", stdin=True)
    await session.write(b"last\n")
    session.close_stdin()  # stdinOnce: the container reads EOF and ends
    out, _, code = await collect(session)
    assert b"got last" in out and b"eof" in out and code == 3
    assert ("stdout", "got last") in log_texts(runtime, "once")
    with pytest.raises(ExecError, match="not running"):
        runtime.attach("rt-test-uid", "once", stdin=True)


async def test_attach_to_a_tty_container(sandbox: Sandbox, runtime: Runtime) -> None:
    s = await runtime.start(sandbox.spec("tty", "tty; exec sh", stdin=True, tty=True))
    sandbox.pids.add(s.pid)
    deadline = time.monotonic() + 5
    while not any(t.startswith("/dev/pts/") for _, t in log_texts(runtime, "tty")):
        assert time.monotonic() < deadline, log_texts(runtime, "tty")
        await asyncio.sleep(0.02)
    session = runtime.attach("rt-test-uid", "tty", stdin=True)
    session.resize(cols=100, rows=30)
    await session.write(b"stty size; echo $((6*7))\n")
    assert b"30 100" in await read_until(session, b"42\r\n")
    await session.write(b"exit 6\n")
    assert (await collect(session))[2] == 6
    with pytest.raises(ExecError, match="stdin is not enabled"):
        s = await runtime.start(sandbox.spec("plain", "exec sleep 60"))
        sandbox.pids.add(s.pid)
        runtime.attach("rt-test-uid", "plain", stdin=True)


async def test_stop_sends_sigterm_then_sigkill_after_grace(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    script = 'trap "echo got TERM" TERM; echo ready; while :; do sleep 0.05; done'
    s = await runtime.start(sandbox.spec("stubborn", script))
    sandbox.pids.add(s.pid)
    await wait_for_log(runtime, "stubborn", "ready")
    t0 = time.monotonic()
    assert await runtime.stop("rt-test-uid", "stubborn", grace_seconds=0.5) == 137
    assert time.monotonic() - t0 >= 0.5
    assert ("stdout", "got TERM") in log_texts(runtime, "stubborn")

    s = await runtime.start(sandbox.spec("polite", "echo ready; exec sleep 60"))
    sandbox.pids.add(s.pid)
    await wait_for_log(runtime, "polite", "ready")
    t0 = time.monotonic()
    assert await runtime.stop("rt-test-uid", "polite", grace_seconds=10) == 143
    assert time.monotonic() - t0 < 2


async def test_adopt_after_agent_restart(sandbox: Sandbox) -> None:
    first = Runtime(sandbox.state_dir)
    ticker = await first.start(sandbox.spec("ticker", "while :; do echo tick; sleep 0.05; done"))
    doomed = await first.start(sandbox.spec("doomed", "exec sleep 60"))
    sandbox.pids |= {ticker.pid, doomed.pid}
    await wait_for_log(first, "ticker", "tick")
    first.detach()  # the agent goes away; its containers do not
    del first
    os.kill(doomed.pid, 9)  # dies while nobody watches
    await asyncio.sleep(0.2)
    lines_before = len(log_texts(Runtime(sandbox.state_dir), "ticker"))

    second = Runtime(sandbox.state_dir)
    try:
        adopted = {s.name: s for s in second.adopt()}
        assert adopted["ticker"].pid == ticker.pid and adopted["ticker"].running
        assert await second.wait("rt-test-uid", "doomed") == 137
        # Output written while nobody pumped waited in the pipe; pumping resumed.
        deadline = time.monotonic() + 5
        while len(log_texts(second, "ticker")) < lines_before + 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(log_texts(second, "ticker")) >= lines_before + 3
        assert set(log_texts(second, "ticker")) == {("stdout", "tick")}
        assert await second.stop("rt-test-uid", "ticker", grace_seconds=2) == 143
        assert not _alive(ticker.pid)
        again = {s.name: s.running for s in Runtime(sandbox.state_dir).adopt()}
        assert again == {"doomed": False, "ticker": False}
    finally:
        second.detach()
    second.remove_pod("rt-test-uid")
    assert not (sandbox.state_dir / "containers" / "rt-test-uid").exists()


def _netns_inode(path: str) -> int:
    return os.stat(path).st_ino


async def test_pause_runs_in_the_fork_server_without_exec(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    spec = replace(sandbox.spec("pause", ""), argv=(sys.executable, "-m", PAUSE_MODULE))
    s = await runtime.start(spec)
    sandbox.pids.add(s.pid)
    assert Path(f"/proc/{s.pid}/comm").read_text() == "pause\n"
    assert os.stat(f"/proc/{s.pid}/ns/net").st_ino == _netns_inode(f"/run/netns/{sandbox.netns}")
    proc = await runtime.exec("rt-test-uid", "pause", ["hostname"])
    sandbox.pids.add(proc.pid)
    assert await collect(proc) == (b"web-0\n", b"", 0)
    assert await runtime.stop("rt-test-uid", "pause", grace_seconds=5) == 0  # as pause.c
    assert log_texts(runtime, "pause") == [("stderr", "Shutting down, got signal: Terminated")]
    final = runtime.state("rt-test-uid", "pause")
    assert final is not None and final.reason == "Completed"


async def test_a_burst_of_starts_each_gets_its_own_exit(
    sandbox: Sandbox, runtime: Runtime
) -> None:
    states = await asyncio.gather(
        *(runtime.start(sandbox.spec(f"c{i}", f"echo {i}; exit {i}")) for i in range(20))
    )
    sandbox.pids |= {s.pid for s in states}
    codes = [await runtime.wait("rt-test-uid", f"c{i}") for i in range(20)]
    assert codes == list(range(20))
    assert [log_texts(runtime, f"c{i}") for i in range(3)] == [
        [("stdout", "0")],
        [("stdout", "1")],
        [("stdout", "2")],
    ]


async def test_containers_outlive_their_fork_server(sandbox: Sandbox, runtime: Runtime) -> None:
    s = await runtime.start(sandbox.spec("survivor", "echo ready; exec sleep 60"))
    sandbox.pids.add(s.pid)
    await wait_for_log(runtime, "survivor", "ready")
    server = runtime._server
    assert server is not None
    os.kill(server.pid, 9)  # the server this test's Runtime started
    deadline = time.monotonic() + 5
    while server.alive and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not server.alive and _alive(s.pid)
    # A new server takes over new starts; the survivor is watched by its pidfd.
    s2 = await runtime.start(sandbox.spec("next", "exit 5"))
    sandbox.pids.add(s2.pid)
    assert runtime._server is not server
    assert await runtime.wait("rt-test-uid", "next") == 5
    # Its parent is now init, which reaps it: the code is what a zombie showed, or unknown.
    assert await runtime.stop("rt-test-uid", "survivor", grace_seconds=2) in (143, 137)
    assert not _alive(s.pid)


STACKED = """
import ctypes, os, sys
from podnet.agent import launcher
from podnet.kernel.mounts import libc
assert libc().unshare(0x00020000) == 0  # CLONE_NEWNS: none of this reaches the host
launcher.mount(None, "/", None, launcher.MS_REC | launcher.MS_PRIVATE)
os.makedirs("/run/netns", exist_ok=True)
launcher.mount("/run/netns", "/run/netns", None, launcher.MS_BIND)  # as ip makes it
launcher.mount("podnet-test", "/run/netns", "tmpfs", 0)  # and podnet's tmpfs over it
open("/run/netns/pod-a", "w").close()
launcher.mount("/proc/self/ns/net", "/run/netns/pod-a", None, launcher.MS_BIND)
launcher.hide_netns_names()
print(sum(" /run/netns" in line for line in open("/proc/self/mountinfo")))
"""


def test_netns_names_are_hidden_through_stacked_mounts() -> None:
    # /run/netns is often a mount on a mount: the fork server must detach every layer,
    # not only the top one, or containers see (and copy) what is underneath.
    r = subprocess.run([sys.executable, "-c", STACKED], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


async def test_no_container_holds_other_pods_namespaces(sandbox: Sandbox, runtime: Runtime
                                                        ) -> None:
    """Named namespaces are bind mounts under /run/netns; a container's mount namespace
    that copied them would keep a deleted pod's network namespace alive and let the
    container enter it by path. Neither the fork server's children nor their exec'd
    programs see /run/netns mounts, yet each is in its own pod's namespace."""
    other = f"podnet-rt-other-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", other], check=True)  # another pod, made first
    try:
        pause = await runtime.start(replace(sandbox.spec("pause", ""),
                                            argv=(sys.executable, "-m", PAUSE_MODULE)))
        shell = await runtime.start(sandbox.spec("sh", "exec sleep 30"))
        sandbox.pids |= {pause.pid, shell.pid}
        for pid in (pause.pid, shell.pid):
            mounts = Path(f"/proc/{pid}/mountinfo").read_text()
            assert "/run/netns" not in mounts, mounts
            assert os.stat(f"/proc/{pid}/ns/net").st_ino == _netns_inode(
                f"/run/netns/{sandbox.netns}")
    finally:
        subprocess.run(["ip", "netns", "delete", other], check=False)
