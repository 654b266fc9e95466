"""Run extractions in helper processes, killing a helper whose file overruns the time limit.

A hostile file can hang or exhaust a parser; only a separate process can be stopped reliably.
Helpers are reused: starting one costs about a second, because multiprocessing re-imports the
caller's main module (all of ``materials``) in every new process.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from indexer.extractors import Extracted, ExtractionContext, ExtractionFailed
from indexer.extractors._time import MORE_TIME, limit_cpu, serving

__all__ = ["extract_in_child_process"]

_TASKS_PER_HELPER = 500  # then a fresh one: nothing one file leaves behind lasts long
_MAX_IDLE_HELPERS = 2
_START_SECONDS = 60.0  # a helper imports the parsing libraries before it is ready

_CHILD_EXITED_REASON = "处理文件时解析进程意外退出，文件可能已损坏"


@dataclass
class _Helper:
    process: BaseProcess
    connection: Connection
    tasks: int = 0


_idle: list[_Helper] = []
_idle_lock = threading.Lock()


def extract_in_child_process(context: ExtractionContext) -> Extracted:
    """``extract_here`` in a helper process; ExtractionFailed(timeout) when it overruns."""
    helper = _take_helper()
    try:
        helper.connection.send(context)
    except OSError:  # it died while idle
        _stop(helper)
        helper = _start_helper()
        helper.connection.send(context)
    try:
        message = _answer(helper.connection, context)
    except EOFError as exc:  # the helper died on this file (a crash in C code, the OOM killer)
        _stop(helper)
        raise ExtractionFailed(_CHILD_EXITED_REASON, code="corrupt") from exc
    except BaseException:
        _stop(helper)
        raise
    helper.tasks += 1
    if message[0] == "retire":  # its memory ran out: what it holds now cannot be trusted
        _stop(helper)
    else:
        _give_back(helper)
    if message[0] in ("failed", "retire"):
        raise ExtractionFailed(message[1], code=message[2])
    extracted: Extracted = message[1]
    return extracted


def _answer(connection: Connection, context: ExtractionContext) -> tuple[Any, ...]:
    """The helper's answer, waiting the per-file time and what OCR asks for on top of it."""
    limits = context.limits
    deadline = time.monotonic() + limits.timeout_seconds
    allowed = limits.timeout_seconds
    extra_left = limits.ocr_max_pages * limits.ocr_seconds_per_page
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not connection.poll(remaining):
            raise ExtractionFailed(f"文件处理超时（超过 {allowed:g} 秒），已停止", code="timeout")
        message: tuple[Any, ...] = connection.recv()
        if message[0] != MORE_TIME:
            return message
        granted = min(float(message[1]), extra_left)
        extra_left -= granted
        deadline += granted
        allowed += granted


def _take_helper() -> _Helper:
    with _idle_lock:
        while _idle:
            helper = _idle.pop()
            if helper.process.is_alive():
                return helper
            _stop(helper)
    return _start_helper()


def _give_back(helper: _Helper) -> None:
    with _idle_lock:
        if helper.tasks < _TASKS_PER_HELPER and len(_idle) < _MAX_IDLE_HELPERS:
            _idle.append(helper)
            return
    _stop(helper)


def _start_helper() -> _Helper:
    # spawn: nothing of the caller (threads, locks, database connections) is inherited.
    processes = multiprocessing.get_context("spawn")
    connection, helper_end = processes.Pipe()
    process = processes.Process(target=_serve, args=(helper_end,), name="extract", daemon=True)
    process.start()
    helper_end.close()
    helper = _Helper(process, connection)
    try:
        ready = connection.poll(_START_SECONDS) and connection.recv() == "ready"
    except EOFError:
        ready = False
    if not ready:
        _stop(helper)
        raise RuntimeError("the text extraction helper process did not start")
    return helper


def _serve(connection: Connection) -> None:
    """A helper's life: extract each context it is sent until the pipe closes."""
    # Its own process group, so that killing it also ends the programs it runs (antiword).
    os.setsid()
    # pdfminer logs a warning for every oddity of a malformed file.
    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    from indexer.extractors._dispatch import extract_here

    _exit_when_orphaned()
    connection.send("ready")
    while True:
        try:
            context = connection.recv()
        except EOFError:
            return
        # The address-space cap turns a decompression bomb into MemoryError instead of swapping.
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = context.limits.max_memory_bytes
        resource.setrlimit(
            resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
        )
        limit_cpu(context.limits.timeout_seconds)
        message: tuple[Any, ...]
        try:
            with serving(connection):
                message = ("ok", extract_here(context))
        except ExtractionFailed as failure:
            # Sent as plain values: the exception's keyword-only code does not survive pickling.
            out_of_memory = isinstance(failure.__cause__, MemoryError)
            message = ("retire" if out_of_memory else "failed", failure.reason, failure.code)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        connection.send(message)
        if message[0] == "retire":
            return


def _exit_when_orphaned() -> None:
    """End the helper once the process that started it is gone (killed, crashed, exited)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _stop(helper: _Helper) -> None:
    process = helper.process
    helper.connection.close()
    if process.pid is not None and process.is_alive():
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()  # it had not made its own process group yet
    process.join(5)
    with contextlib.suppress(ValueError):
        process.close()
