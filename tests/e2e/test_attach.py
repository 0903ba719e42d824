"""kubectl attach and kubectl run -i / -it against containers with stdin and a TTY."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.conftest import Cluster, apply, wait_for


@pytest.fixture(scope="module")
def attachable(cluster: Cluster) -> Iterator[Cluster]:
    apply(cluster, """
        apiVersion: v1
        kind: Pod
        metadata: {name: reader}
        spec:
          containers:
          - name: reader
            image: busybox
            stdin: true
            command: ["sh", "-c", "echo reader up; while read l; do echo \\"got $l\\"; done"]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: ticker}
        spec:
          containers:
          - name: ticker
            image: busybox
            command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
        """)
    for name in ("reader", "ticker"):
        wait_for(lambda n=name: _phase(cluster, n) == "Running", 60, f"{name} Running")
    yield cluster


def _phase(cluster: Cluster, name: str) -> str:
    r = cluster.kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}", check=False)
    return r.stdout


def _restarts(cluster: Cluster, name: str) -> str:
    return cluster.kubectl("get", "pod", name, "-o",
                           "jsonpath={.status.containerStatuses[0].restartCount}").stdout


def _kubectl_argv(cluster: Cluster, cache: str, *args: str) -> list[str]:
    return ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "--cache-dir", cache, *args]


def _read_until(proc: subprocess.Popen[bytes], fd: int, needle: bytes, timeout: float,
                seen: bytearray) -> bool:
    """Read `fd` into `seen` until `needle` shows up (True) or time runs out (False)."""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the terminal's other side is gone
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    return needle in seen


@contextmanager
def _attached(cluster: Cluster, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`kubectl attach <args>` running, with pipes; ended by its PID afterwards."""
    with tempfile.TemporaryDirectory() as cache:
        proc = subprocess.Popen(_kubectl_argv(cluster, cache, "attach", *args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.PIPE)
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(10)


def _still_running_without_restarts(cluster: Cluster, name: str) -> None:
    time.sleep(0.5)
    assert _phase(cluster, name) == "Running"
    assert _restarts(cluster, name) == "0"


def test_attach_streams_output_and_detaching_leaves_the_container_running(
        attachable: Cluster) -> None:
    with _attached(attachable, "ticker") as proc:
        assert proc.stdout is not None
        seen = bytearray()
        assert _read_until(proc, proc.stdout.fileno(), b"tick", 20, seen), seen
        first = int(seen.split(b"tick ")[1].split()[0])
        assert _read_until(proc, proc.stdout.fileno(), f"tick {first + 3}".encode(), 10,
                           seen), seen
    _still_running_without_restarts(attachable, "ticker")


def test_attach_with_stdin_talks_to_the_main_process(attachable: Cluster) -> None:
    with _attached(attachable, "-i", "reader") as proc:
        assert proc.stdout is not None and proc.stdin is not None
        seen = bytearray()
        for word in (b"hello", b"again"):
            proc.stdin.write(word + b"\n")
            proc.stdin.flush()
            assert _read_until(proc, proc.stdout.fileno(), b"got " + word, 20, seen), seen
    # Not stdinOnce: the container's stdin stays open for the next attach.
    _still_running_without_restarts(attachable, "reader")


def test_attach_to_a_container_without_stdin_is_refused(attachable: Cluster) -> None:
    r = attachable.kubectl("attach", "-i", "ticker", stdin="x\n", check=False, timeout=30)
    assert r.returncode != 0
    assert "stdin is not enabled" in r.stderr, r.stderr


def test_run_i_rm_pipes_stdin_and_deletes_the_pod(attachable: Cluster) -> None:
    r = attachable.kubectl("run", "piped", "-i", "--rm", "--restart=Never", "--image=busybox",
                           "--", "sh", stdin="echo from-stdin $((6*7))\nexit 0\n", timeout=90)
    assert "from-stdin 42" in r.stdout, r.stdout + r.stderr
    assert 'pod "piped" deleted' in r.stdout + r.stderr
    assert attachable.kubectl("get", "pod", "piped", check=False).returncode != 0


def test_run_it_rm_gives_an_interactive_shell(attachable: Cluster) -> None:
    master, slave = pty.openpty()
    with tempfile.TemporaryDirectory() as cache:
        proc = subprocess.Popen(
            _kubectl_argv(attachable, cache, "run", "shell", "-it", "--rm", "--restart=Never",
                          "--image=busybox", "--", "sh"),
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        seen = bytearray()
        try:
            assert _read_until(proc, master, b"pressing enter", 60, seen), seen
            os.write(master, b"\r")
            os.write(master, b"echo answer=$((6*7)); tty\r")
            assert _read_until(proc, master, b"answer=42", 20, seen), seen
            assert _read_until(proc, master, b"/dev/pts/", 10, seen), seen
            os.write(master, b"exit 0\r")
            proc.wait(60)
            _read_until(proc, master, b'pod "shell" deleted', 5, seen)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            os.close(master)
    assert proc.returncode == 0, seen
    assert b'pod "shell" deleted' in seen, seen
    wait_for(lambda: attachable.kubectl("get", "pod", "shell", check=False).returncode != 0,
             30, "pod shell gone")
