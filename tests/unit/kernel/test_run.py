"""The subprocess helper and batch error reporting (harmless programs only, no root)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from podnet.kernel.run import KernelError, batch_argv, failed_batch_line, ip_batch, run


async def test_run_returns_output_and_feeds_input() -> None:
    done = await run(
        sys.executable, "-c", "import sys; print(sys.stdin.read().upper())", input="hello"
    )
    assert (done.returncode, done.stdout) == (0, "HELLO\n")


async def test_run_raises_with_command_and_stderr() -> None:
    code = "import sys; sys.stderr.write('RTNETLINK answers: File exists'); sys.exit(2)"
    with pytest.raises(KernelError) as err:
        await run(sys.executable, "-c", code)
    assert err.value.returncode == 2
    assert err.value.stderr == "RTNETLINK answers: File exists"
    assert err.value.exists and not err.value.not_found
    assert sys.executable in err.value.command


async def test_run_without_check_returns_failure() -> None:
    done = await run(sys.executable, "-c", "raise SystemExit(3)", check=False)
    assert done.returncode == 3


async def test_many_runs_in_parallel_all_finish() -> None:
    outs = await asyncio.gather(*(run(sys.executable, "-c", f"print({i})") for i in range(40)))
    assert [o.stdout.strip() for o in outs] == [str(i) for i in range(40)]


def test_batch_argv() -> None:
    assert batch_argv(None) == ["ip", "-batch", "-"]
    assert batch_argv("podnet-c-n") == ["ip", "-n", "podnet-c-n", "-batch", "-"]


def test_failed_batch_line_names_the_line_ip_stopped_at() -> None:
    cmds = ["link set dev lo up", "link set dev nosuch up", "link set dev eth0 up"]
    stderr = 'Cannot find device "nosuch"\nCommand failed -:2\n'
    assert failed_batch_line(cmds, stderr) == "link set dev nosuch up"
    assert failed_batch_line(cmds, "weird") == "; ".join(cmds)


def test_kernel_error_knows_missing_objects() -> None:
    e = KernelError("link del dev vp0", 'Cannot find device "vp0"', 1, "podnet-c-n")
    assert e.not_found and not e.exists
    assert "in netns podnet-c-n" in str(e) and "link del dev vp0" in str(e)


async def test_empty_batch_runs_nothing_and_bad_lines_are_refused() -> None:
    assert (await ip_batch([])).returncode == 0
    with pytest.raises(ValueError):
        await ip_batch(["link set dev lo up\nlink del dev eth0"])
