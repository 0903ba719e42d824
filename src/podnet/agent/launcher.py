"""Turn this process into a container, then exec its program.

    python -I -S launcher.py [--error-fd N] [--enter-pid PID] <spec.json | inline JSON>

Run by podnet.agent.runtime as a plain script (`-S`, stdlib only, no podnet imports) so
it starts in a few milliseconds: for `kubectl exec`. Container starts run the same
functions (load_spec, setup, execute) in a forked child of forkserver.py, which has
already paid for the interpreter and these imports. The spec is the JSON form of
runtime.ContainerSpec plus `stdout`/`stderr` (paths, or null to keep the inherited fds),
`tty`, and `builtin` (which only forkserver.py acts on).

Normal mode: join the pod's network namespace, unshare mount + UTS namespaces, make `/`
private, detach /run/netns (other pods' namespaces), mount fresh tmpfs on the `tmpfs`
paths (e.g. /run, /tmp), bind-mount the pod's files and volumes, set the hostname, drop
privileges, chdir, exec. `--enter-pid`: join
the net, UTS and mount namespaces of a running container instead (kubectl exec).

Any failure exits 128 with one line ("launcher: <reason>") on the original stderr, or on
fd N with --error-fd; that fd is made close-on-exec, so whoever holds the other end sees
EOF exactly when exec succeeded.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

# No `import typing` at run time: the launcher's start-up time is every container's.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MNT_DETACH = 2
EINVAL = 22
ENOENT = 2
NETNS_DIR = "/run/netns"
TIOCSCTTY = 0x540E
EXIT_START_ERROR = 128


class LaunchError(Exception):
    pass


_libc: Any = None
_netns_hidden = False  # set in the fork server; its children inherit it


def libc() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
        ]
        # Resolved here, once: the fork server calls this before forking, and a function
        # first looked up in a forked child costs it ~100 page copies (new objects, a
        # grown attribute dict), in every child.
        for name in ("setns", "unshare", "umount2", "sethostname", "prctl"):
            getattr(_libc, name)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise LaunchError(f"{what}: {os.strerror(err)}")


def hide_netns_names() -> None:
    """Detach /run/netns from this (private) mount namespace.

    Every named network namespace is a bind mount under /run/netns, and a new mount
    namespace copies them all: a container would keep every other pod's network
    namespace alive after that pod was deleted (until the container itself exits), and
    could enter it by path. Also, copying them costs each container start time in
    proportion to the pods on the node. Every layer goes: /run/netns is often a mount
    stacked on a mount (ip's bind of the directory onto itself, podnet's tmpfs over it),
    and each namespace name lives on the top one. Not a mount point here: fine. Nothing
    to do in a child of a fork server that already hid it from its own namespace."""
    if _netns_hidden:
        return
    for _ in range(16):
        if libc().umount2(NETNS_DIR.encode(), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err not in (EINVAL, ENOENT):  # not a mount point; no such directory
                raise LaunchError(f"umount {NETNS_DIR}: {os.strerror(err)}")
            return


def isolate_from_netns_names() -> None:
    """For the fork server: a mount namespace of its own, a slave of the host's (mounts
    made later, such as volumes, still show), without /run/netns. Its children then copy
    a handful of mounts, not one per pod; they get their network namespace by fd."""
    global _netns_hidden
    _check(libc().unshare(CLONE_NEWNS), "unshare")
    mount(None, "/", None, MS_REC | MS_SLAVE)
    hide_netns_names()
    _netns_hidden = True


def setns_fd(fd: int, nstype: int) -> None:
    _check(libc().setns(fd, nstype), "setns")


def setns(path: str, nstype: int) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise LaunchError(f"open {path}: {e.strerror}") from None
    try:
        _check(libc().setns(fd, nstype), f"setns {path}")
    finally:
        os.close(fd)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(
        libc().mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {source or 'none'} on {target}",
    )


def open_source(host: str) -> int:
    """Hold a bind-mount source by fd, so a tmpfs mounted later cannot hide it."""
    try:
        return os.open(host, os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        raise LaunchError(f"mount source {host}: {e.strerror}") from None


def bind(source_fd: int, container: str, read_only: bool) -> None:
    import stat

    if stat.S_ISDIR(os.fstat(source_fd).st_mode):
        os.makedirs(container, exist_ok=True)
    elif not os.path.exists(container):
        os.makedirs(os.path.dirname(container) or "/", exist_ok=True)
        os.close(os.open(container, os.O_WRONLY | os.O_CREAT, 0o644))
    mount(f"/proc/self/fd/{source_fd}", container, None, MS_BIND | MS_REC)
    if read_only:
        mount(None, container, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def open_output(path: str) -> int:
    """A FIFO is opened read-write so that writes never fail with EPIPE while the agent
    (its reader) restarts: output waits in the pipe instead of killing the container."""
    import stat

    try:
        st = os.stat(path)
        if stat.S_ISFIFO(st.st_mode):
            return os.open(path, os.O_RDWR)
    except FileNotFoundError:
        pass
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)


def redirect_output(spec: dict[str, Any]) -> None:
    """Point fds 1 and 2 at the spec's stdout/stderr (once; later calls do nothing)."""
    for key, fd in (("stdout", 1), ("stderr", 2)):
        if spec.get(key):
            out = open_output(spec.pop(key))
            os.dup2(out, fd)
            os.close(out)


def enter(pid: int) -> None:
    """Join the namespaces of container process `pid` (open all first: after the mount
    namespace switch, /proc may not be the same)."""
    fds = []
    try:
        for ns, flag in (("net", CLONE_NEWNET), ("uts", CLONE_NEWUTS), ("mnt", CLONE_NEWNS)):
            try:
                fds.append((os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC), flag))
            except OSError as e:
                raise LaunchError(f"container process {pid} is gone: {e.strerror}") from None
        for fd, flag in fds:
            _check(libc().setns(fd, flag), f"setns into process {pid}")
    finally:
        for fd, _ in fds:
            os.close(fd)


def setup(spec: dict[str, Any], enter_pid: int | None) -> None:
    if enter_pid is not None:
        enter(enter_pid)
    else:
        if spec.get("netns"):
            setns(spec["netns"], CLONE_NEWNET)
        _check(libc().unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        hide_netns_names()
        # Paths on the host are opened before anything is mounted over them.
        redirect_output(spec)
        mounts = [(open_source(h), c, bool(ro)) for h, c, ro in spec.get("mounts") or []]
        # Fresh, private directories (as an image's own /run and /tmp would be). Mount
        # points created below them, like /var/run/secrets/..., then exist only here.
        for path in spec.get("tmpfs") or []:
            mode = "1777" if path in ("/tmp", "/var/tmp") else "0755"
            os.makedirs(path, exist_ok=True)
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode}")
        for fd, container, read_only in mounts:
            bind(fd, container, read_only)
            os.close(fd)
        if spec.get("hostname"):
            name = spec["hostname"].encode()
            _check(libc().sethostname(name, len(name)), "sethostname")
    if spec.get("tty"):
        import fcntl

        fcntl.ioctl(0, TIOCSCTTY, 0)
    redirect_output(spec)
    gid = spec.get("gid")
    uid = spec.get("uid")
    if spec.get("groups") is not None or gid is not None or uid is not None:
        groups = spec.get("groups") or []
        os.setgroups([int(g) for g in groups])
    if gid is not None:
        os.setgid(int(gid))
    elif uid is not None:
        os.setgid(0)
    if uid is not None:
        os.setuid(int(uid))
    cwd = spec.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise LaunchError(
            f'chdir to cwd ("{cwd}") set in config.json failed: {e.strerror}'
        ) from None


def load_spec(text: str) -> dict[str, Any]:
    """The spec from inline JSON or a file; one with no command is refused."""
    if not text.lstrip().startswith("{"):
        # os.read, not open(): in a forked child every page touched is copied, and a
        # text file object touches many.
        fd = os.open(text, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
        spec: dict[str, Any] = json.loads(b"".join(chunks))
    else:
        spec = json.loads(text)
    if not spec.get("argv"):
        raise LaunchError("no command specified")
    return spec


def restore_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across
    exec: give the program the default actions, as subprocess's restore_signals does."""
    import signal

    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def execute(spec: dict[str, Any]) -> None:
    """Exec the spec's program; returns only by raising LaunchError."""
    program = [str(a) for a in spec["argv"]]
    env = {str(k): str(v) for k, v in spec.get("env") or []}
    restore_signals()
    try:
        os.execvpe(program[0], program, env)
    except FileNotFoundError:
        raise LaunchError(f'exec: "{program[0]}": executable file not found in $PATH') from None
    except PermissionError:
        raise LaunchError(f'exec: "{program[0]}": permission denied') from None
    except OSError as e:
        raise LaunchError(f'exec: "{program[0]}": {e.strerror}') from None


def report(err_fd: int, error: BaseException) -> None:
    """The one line the runtime turns into StartError's message."""
    msg = str(error).replace("\n", " ")
    try:
        os.write(err_fd, f"launcher: {msg}\n".encode())
    except OSError:
        return  # nobody is listening any more


def main(argv: list[str]) -> int:
    enter_pid: int | None = None
    args = list(argv)
    err_fd = -1
    if len(args) >= 2 and args[0] == "--error-fd":
        err_fd = int(args[1])
        args = args[2:]
    else:
        # The original stderr, close-on-exec: errors go here even after fd 2 is the log.
        err_fd = os.dup(2)
    os.set_inheritable(err_fd, False)
    try:
        if len(args) >= 2 and args[0] == "--enter-pid":
            enter_pid = int(args[1])
            args = args[2:]
        if len(args) != 1:
            raise LaunchError("usage: launcher [--enter-pid PID] <spec.json | JSON>")
        spec = load_spec(args[0])
        setup(spec, enter_pid)
        execute(spec)
    except (LaunchError, OSError, ValueError) as e:
        report(err_fd, e)
    return EXIT_START_ERROR  # execvpe does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
