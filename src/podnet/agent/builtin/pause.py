"""The `registry.k8s.io/pause` image: sleep until SIGTERM or SIGINT, then exit 0.

Kubernetes' pause also reaps zombies when it is PID 1; under podnet it never is (the agent
starts it), so it reaps nothing. No asyncio: this must start in a few tens of milliseconds.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

_NAMES = {signal.SIGTERM: "Terminated", signal.SIGINT: "Interrupt"}


def wait_for_signal() -> int:
    """Block until SIGTERM or SIGINT arrives; return its number."""
    wanted = {signal.SIGTERM, signal.SIGINT}
    # Block first so a signal arriving before sigwait is queued, not fatal.
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    return int(signal.sigwait(wanted))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["-v"]:
        print("pause.c podnet")
        return 0
    sig = wait_for_signal()
    sys.stderr.write(f"Shutting down, got signal: {_NAMES.get(signal.Signals(sig), sig)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
