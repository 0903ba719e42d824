"""A warm launcher: one long-lived process that forks each container, so no container
start pays for a Python interpreter (~25 ms of CPU each, which made a 100-pod burst take
seconds on two cores).

    python -I -S forkserver.py --control-fd N

Started by podnet.agent.runtime, one per Runtime and only when a container first starts;
N is its end of a SOCK_SEQPACKET socket pair. One JSON object per message:

    runtime → server  {"id": I, "spec": "<launch spec path>"}   + SCM_RIGHTS [error fd]
                      {..., "stdio": "stdin" | "tty"}  + SCM_RIGHTS [error fd, stdio fd]
                      {..., "netns": true}  + SCM_RIGHTS [..., the pod's network namespace]
    server → runtime  {"id": I, "pid": P, "ticks": T}           + SCM_RIGHTS [pidfd of P]
                      {"id": I, "error": "<why fork failed>"}
                      {"exit": P, "status": S}   S: a waitpid status, sent once P is reaped

Per request the server forks; the child does exactly what launcher.py does (new session,
net namespace, private mount + UTS namespaces, tmpfs, bind mounts, hostname, user, chdir,
exec; the same functions) and reports a failure as one line on the error fd, success as
EOF (the fd is close-on-exec). Containers are this server's children: it reaps them,
watching one pidfd per child (so no signal handler, nothing racy), and sends the status.
The pid, start ticks and pidfd are taken before the server can have reaped the child, and
the reply precedes that pid's exit message, so the runtime never mistakes a recycled PID.

The server lives in a mount namespace of its own, a slave of the host's, without
/run/netns (launcher.isolate_from_netns_names): a child's new mount namespace then copies
a handful of mounts instead of one per pod on the node, and no container holds another
pod's namespace. So the pod's network namespace comes as an fd, opened by the runtime.

The server exits when the runtime's end of the socket closes (the agent detached or
died). Containers outlive it, reparented to init, exactly as they outlive the agent; a
restarted agent adopts them from its state files as before.

`"builtin": "pause"` in the spec: the child is not exec'd. After setup it blocks SIGTERM
and SIGINT, reports success, sigwait()s and exits 0 with pause.c's farewell line. A forked
copy of this small process costs a fraction of any exec, and keeps pause's exit code 0.

Stdlib only, like launcher.py, so it starts fast under `-I -S`.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from podnet.agent import launcher
elif __package__:
    from podnet.agent import launcher
else:
    # Run as a script (`-I` leaves the script's directory off sys.path).
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import launcher

ERR_FD = 3  # where a child keeps its error fd
MAX_FDS = 4
PR_SET_NAME = 15
PAUSE_SIGNALS = {signal.SIGTERM: "Terminated", signal.SIGINT: "Interrupt"}


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def received_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """The file descriptors an SCM_RIGHTS message carried."""
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds += [int.from_bytes(data[i : i + 4], sys.byteorder) for i in range(0, usable, 4)]
    return fds


def send(sock: socket.socket, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, b"".join(
        fd.to_bytes(4, sys.byteorder) for fd in fds))] if fds else []  # fmt: skip
    sock.sendmsg([encode(message)], anc)


def start_ticks(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat: what tells this process from a later one with its PID."""
    # os.read, not open(): every page the server touches between forks is copied (the
    # children share them), and a text file object touches many.
    fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    return int(data[data.rindex(b")") + 2 :].split()[19])


def _pause() -> NoReturn:
    os.close(ERR_FD)  # nothing to exec: started
    sig = signal.sigwait(set(PAUSE_SIGNALS))
    name = PAUSE_SIGNALS.get(signal.Signals(sig), str(sig))
    os.write(2, f"Shutting down, got signal: {name}\n".encode())
    os._exit(0)


def _child(spec_path: str, err_fd: int, stdio: str | None = None, stdio_fd: int = -1,
           netns_fd: int = -1, spec: dict[str, Any] | None = None) -> NoReturn:
    """Become the container; never returns into the server's loop. `stdio_fd` becomes
    fd 0 ("stdin": a pipe the agent writes) or fds 0-2 ("tty": a terminal's slave side,
    made the controlling terminal by launcher.setup). `netns_fd`: the pod's network
    namespace (the spec's path is not visible from here)."""
    try:
        if netns_fd >= 0:
            launcher.setns_fd(netns_fd, launcher.CLONE_NEWNET)
            os.close(netns_fd)
        os.setsid()
        if err_fd != ERR_FD:
            os.dup2(err_fd, ERR_FD, inheritable=False)
        else:
            os.set_inheritable(ERR_FD, False)
        null = os.open("/dev/null", os.O_RDWR)
        sources = {0: null, 1: null, 2: null}
        if stdio == "tty":
            sources = {0: stdio_fd, 1: stdio_fd, 2: stdio_fd}
        elif stdio == "stdin":
            sources[0] = stdio_fd
        for fd, source in sources.items():
            os.dup2(source, fd)
        # The server's socket, the other children's pidfds: none of the container's.
        os.closerange(ERR_FD + 1, os.sysconf("SC_OPEN_MAX"))
        if spec is None:  # the server could not read it: say why from here
            spec = launcher.load_spec(spec_path)
        if netns_fd >= 0:
            spec["netns"] = None  # joined above
        builtin = spec.get("builtin")
        if builtin == "pause":
            # Blocked before success is reported, so an early SIGTERM is queued, not fatal.
            signal.pthread_sigmask(signal.SIG_BLOCK, set(PAUSE_SIGNALS))
        launcher.setup(spec, None)
        if builtin == "pause":
            launcher.libc().prctl(PR_SET_NAME, b"pause", 0, 0, 0)
            _pause()
        launcher.execute(spec)
    except BaseException as e:  # whatever it was, the runtime hears of it
        launcher.report(ERR_FD, e)
    finally:
        os._exit(launcher.EXIT_START_ERROR)


def _request(ctrl: socket.socket, poller: select.poll, children: dict[int, int]) -> bool:
    """Serve one message from the runtime; False once it has gone away."""
    msg, anc, _, _ = ctrl.recvmsg(65536, socket.CMSG_SPACE(4 * MAX_FDS), socket.MSG_CMSG_CLOEXEC)
    if not msg:
        return False
    fds = received_fds(anc)
    try:
        req = json.loads(msg)
        rid, spec_path, err_fd = req["id"], str(req["spec"]), fds[0]
        stdio = req.get("stdio")
        used = 2 if stdio in ("stdin", "tty") else 1
        stdio_fd = fds[1] if used == 2 else -1
        netns_fd = fds[used] if req.get("netns") else -1
        used += 1 if netns_fd >= 0 else 0
    except (ValueError, KeyError, IndexError, TypeError):
        for fd in fds:
            os.close(fd)
        return True
    for fd in fds[used:]:
        os.close(fd)
    # Read here, not in the child: objects a forked child allocates land on pages it
    # shares with the server, and each such page is copied (a pod's spec cost each child
    # ~60 page copies to parse; parsed here, the child only reads it).
    try:
        spec: dict[str, Any] | None = launcher.load_spec(spec_path)
    except (OSError, ValueError, launcher.LaunchError):
        spec = None
    try:
        pid = os.fork()
    except OSError as e:
        for fd in (err_fd, stdio_fd, netns_fd):
            if fd >= 0:
                os.close(fd)
        send(ctrl, {"id": rid, "error": f"fork: {e.strerror}"})
        return True
    if pid == 0:
        _child(spec_path, err_fd, stdio, stdio_fd, netns_fd, spec)
    for fd in (err_fd, stdio_fd, netns_fd):
        if fd >= 0:
            os.close(fd)
    pidfd = os.pidfd_open(pid)
    send(ctrl, {"id": rid, "pid": pid, "ticks": start_ticks(pid)}, (pidfd,))
    children[pidfd] = pid
    poller.register(pidfd, select.POLLIN)
    return True


def serve(ctrl: socket.socket) -> None:
    launcher.libc()  # load libc once here, not in every child
    try:
        launcher.isolate_from_netns_names()
    except (launcher.LaunchError, OSError) as e:
        # Children still get their namespace by fd; they copy the host's mounts.
        sys.stderr.write(f"forkserver: own mount namespace: {e}\n")
    # Children touch as few of the server's pages as possible (copy-on-write).
    gc.collect()
    gc.freeze()
    gc.disable()
    poller = select.poll()
    poller.register(ctrl, select.POLLIN)
    children: dict[int, int] = {}  # pidfd → pid
    try:
        while True:
            for fd, _ in poller.poll():
                if fd == ctrl.fileno():
                    if not _request(ctrl, poller, children):
                        return
                    continue
                pid = children.pop(fd)
                poller.unregister(fd)
                _, status = os.waitpid(pid, 0)  # readable pidfd: it has exited
                os.close(fd)
                send(ctrl, {"exit": pid, "status": status})
    except (BrokenPipeError, ConnectionResetError):
        return  # the runtime has gone; containers live on


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "--control-fd":
        sys.stderr.write("usage: forkserver.py --control-fd N\n")
        return 2
    ctrl = socket.socket(fileno=int(argv[1]))
    ctrl.set_inheritable(False)
    serve(ctrl)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
