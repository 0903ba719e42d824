"""The namespace helper process (kernel/nshelper.py) in the real kernel: it carries out
plans of `ip` lines, reports the kernel's refusals as the KernelError the agent's callers
test, survives being killed (the next request starts a new one), and leaves no process,
namespace or link behind."""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from podnet.kernel import netns, netnsdir
from podnet.kernel.nshelper import NetnsHelper
from podnet.kernel.run import KernelError
from tests.kernel.hoststate import snapshot


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _pid(helper: NetnsHelper) -> int:
    proc = helper._proc  # the process this helper started
    assert proc is not None
    return proc.pid


def test_plans_run_in_the_helper_and_errors_come_back_as_kernel_errors() -> None:
    before = snapshot()
    tag = secrets.token_hex(3)
    ns, veth = f"podnet-t{tag}", f"pnt{tag}"

    async def go() -> int:
        mounted = netnsdir.ensure_tmpfs()
        helper = NetnsHelper(workers=2)
        try:
            await helper.run_groups([
                (None, [f"netns add {ns}"]),
                (ns, ["link set dev lo up"]),
            ])
            assert netns.netns_exists(ns)
            await helper.run_groups([(ns, [f"link add {veth} type veth peer name {veth}p"])])
            with pytest.raises(KernelError) as err:  # the same line again
                await helper.run_groups([(ns, [f"link add {veth} type veth peer name {veth}p"])])
            assert err.value.exists and err.value.netns == ns
            assert f"link add {veth}" in err.value.command
            # Several at once, answered in whatever order they finish; asked in one
            # turn of the loop, they go to the helper as one write (one wake-up).
            stdin = helper._proc.stdin if helper._proc else None
            assert stdin is not None
            writes: list[bytes] = []
            write = stdin.write
            stdin.write = lambda data: (writes.append(data), write(data))[1]  # type: ignore
            await asyncio.gather(*(helper.run_groups([(ns, ["link set dev lo up"])])
                                   for _ in range(20)))
            assert [w.count(b"\n") for w in writes] == [20]
            await helper.run_groups([(None, [f"netns del {ns}"])])
            assert not netns.netns_exists(ns)
            return await _pid(helper)
        finally:
            await helper.close()
            if netns.netns_exists(ns):
                await netns.delete_netns(ns)
            if mounted:
                netnsdir.release_tmpfs()

    pid = asyncio.run(go())
    assert not _alive(pid)  # close() stopped the process it started
    assert snapshot() == before


def test_a_killed_helper_fails_what_it_had_and_the_next_request_starts_another() -> None:
    async def go() -> None:
        helper = NetnsHelper(workers=1)
        try:
            await helper.start()
            proc = helper._proc
            assert proc is not None
            first = proc.pid
            # A request in flight when it dies (one it will never answer).
            unanswered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            helper._pending[10**6] = unanswered
            os.kill(first, 9)
            with pytest.raises(KernelError, match="the helper exited"):
                await asyncio.wait_for(unanswered, 10)  # failed, never left hanging
            await proc.wait()
            await helper.run_groups([(None, ["link set dev lo up"])])  # a new helper
            second = await _pid(helper)
            assert second != first and _alive(second)
        finally:
            await helper.close()
        assert not _alive(second)

    asyncio.run(go())


def test_a_bad_line_is_an_error_not_a_dead_helper() -> None:
    async def go() -> None:
        helper = NetnsHelper(workers=1)
        try:
            with pytest.raises(KernelError, match="ValueError"):
                await helper.run_groups([(None, ["frobnicate everything"])])
            await helper.run_groups([(None, ["link set dev lo up"])])
        finally:
            await helper.close()

    asyncio.run(go())
