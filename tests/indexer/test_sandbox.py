"""Extraction helper processes never spin on: not past their CPU time, not past their parent."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection

from indexer.extractors import _sandbox, _time


def spin_forever() -> None:
    while True:
        pass


def busy_helper(report: Connection) -> None:
    """A stand-in for a helper stuck in a file: it watches its parent, then spins."""
    _sandbox._exit_when_orphaned()
    report.send(os.getpid())
    spin_forever()


def parent_of_busy_helper(report: Connection) -> None:
    child = multiprocessing.get_context("spawn").Process(target=busy_helper, args=(report,))
    child.start()
    time.sleep(120)


def cpu_limited_spin(seconds: float) -> None:
    _time.limit_cpu(seconds)
    spin_forever()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split()[2] != "Z"  # a zombie is gone in all but name
    except FileNotFoundError:
        return False


def test_a_busy_helper_exits_when_its_parent_is_killed() -> None:
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    parent = spawn.Process(target=parent_of_busy_helper, args=(theirs,))
    parent.start()
    assert ours.poll(60)
    helper_pid = ours.recv()
    assert alive(helper_pid)

    assert parent.pid is not None
    os.kill(parent.pid, signal.SIGKILL)  # no clean-up runs: the helper is orphaned mid-task
    parent.join(10)
    deadline = time.monotonic() + 15
    while alive(helper_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(helper_pid):
        os.kill(helper_pid, signal.SIGKILL)
        raise AssertionError("the orphaned helper kept running")


def test_a_helper_spinning_past_its_cpu_time_is_ended() -> None:
    process = multiprocessing.get_context("spawn").Process(target=cpu_limited_spin, args=(1.0,))
    process.start()
    process.join(30)
    if process.is_alive():
        process.kill()
        raise AssertionError("still spinning after its CPU time")
    assert process.exitcode == -signal.SIGXCPU
