"""Small files written with as few syscalls as the kernel allows.

The agent writes about ten small files per pod (container state, launcher specs,
resolv.conf, hosts, hostname, the IPAM record) on its event loop. `Path.write_text` goes
through Python's io stack: open, fstat, ioctl (isatty), lseek, write, close, and each
syscall hands the GIL back and forth. Here it is open, write, close.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_file(path: str | Path, data: bytes | str, *, atomic: bool = False,
               mode: int = 0o666) -> None:
    """Write `data` (str as UTF-8) to `path`, replacing what was there. `atomic`: write a
    temporary file beside it and rename it over `path`, so a reader (or a restarted
    agent) sees the old content or the new, never a part of either."""
    raw = data.encode() if isinstance(data, str) else data
    target: str | Path = path
    if atomic:
        head, name = os.path.split(path)
        target = os.path.join(head, f".{name}.{os.getpid()}.tmp")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    if atomic:
        os.replace(target, path)
