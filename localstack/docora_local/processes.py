"""Child processes of the local runner, each in its own process group, so stopping one stops all it spawned.

Ctrl-C in a terminal signals the whole foreground process group. The children live in their own
sessions instead, so they never see it: the runner alone decides what stops, in what way and when,
and it never signals a process it did not start.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

STOP_TIMEOUT_SECONDS = 15.0
_POLL_SECONDS = 0.05
_PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


class StartupError(Exception):
    """A start-up step failed; the message names the step and, when there is one, its log."""


class Interrupted(Exception):
    """A stop was requested (Ctrl-C, SIGTERM, SIGHUP) before start-up finished."""


@dataclass(frozen=True)
class Account:
    """Whom a child runs as; Postgres refuses to run as root."""

    uid: int
    gid: int


@dataclass
class Step:
    """A short command the start-up waits for, such as initdb or the migrations."""

    name: str
    process: subprocess.Popen[str]


@dataclass
class Child:
    """A server that runs until the runner stops it."""

    name: str
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    log: Path | None
    started_at: float = field(default_factory=time.monotonic)

    def failure(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        where = f"; see {os.path.relpath(self.log)}" if self.log else ""
        return f"{self.name} exited with code {code}{where}"


class Supervisor:
    """Starts children, waits for them to be ready, and stops them all, last started first."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.steps: list[Step] = []
        self.stop_requested = False

    def request_stop(self, signum: int, frame: object) -> None:
        # Only a flag: raising here could land between Popen() and the bookkeeping after it.
        self.stop_requested = True

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        account: Account | None = None,
    ) -> Child:
        output = log.open("wb") if log else None
        try:
            process = subprocess.Popen(  # noqa: S603 - argv is built here from fixed paths, never from input
                argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=True,
                # preexec_fn is unsafe only with threads running, and the runner starts none.
                preexec_fn=_dies_with_parent(stop_signal),
                **_as_account(account),
            )
        finally:
            if output:
                output.close()
        child = Child(name, process, stop_signal, log)
        self.children.append(child)
        return child

    def begin(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        account: Account | None = None,
    ) -> Step:
        """Start a short step that other work can overlap. It stays in the runner's process group,
        so Ctrl-C reaches it directly."""
        process = subprocess.Popen(  # noqa: S603 - argv is built here from fixed paths, never from input
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **_as_account(account),
        )
        step = Step(name, process)
        self.steps.append(step)
        return step

    def finish(self, step: Step) -> str:
        """Wait for a step; return what it printed, or raise with what it complained about."""
        stdout, stderr = step.process.communicate()
        self.steps.remove(step)
        if self.stop_requested:
            raise Interrupted
        if step.process.returncode != 0:
            raise StartupError(f"{step.name} failed with code {step.process.returncode}: {(stderr or stdout).strip()}")
        return stdout

    def run(
        self, name: str, argv: list[str], *, cwd: Path, env: Mapping[str, str], account: Account | None = None
    ) -> str:
        return self.finish(self.begin(name, argv, cwd=cwd, env=env, account=account))

    def pause(self, seconds: float) -> None:
        if self.stop_requested:
            raise Interrupted
        time.sleep(seconds)
        if self.stop_requested:
            raise Interrupted

    def wait_until(self, ready: Callable[[], bool], child: Child, timeout: float) -> float:
        """Poll `ready` until it holds; return the seconds since `child` was started."""
        started = time.monotonic()
        while not ready():
            failure = child.failure()
            if failure:
                raise StartupError(failure)
            if time.monotonic() - started > timeout:
                raise StartupError(f"{child.name} was not ready after {timeout:.0f} s")
            self.pause(_POLL_SECONDS)
        return time.monotonic() - child.started_at

    def watch(self, every: Callable[[], None] = lambda: None) -> int:
        """Block until a stop is requested (0) or a child dies on its own (1), calling `every` meanwhile."""
        while not self.stop_requested:
            for child in self.children:
                failure = child.failure()
                if failure:
                    say(failure)
                    return 1
            every()
            time.sleep(0.2)
        return 0

    def stop_all(self) -> None:
        for step in self.steps:
            step.process.kill()
            step.process.communicate()
        self.steps.clear()
        running = [child for child in reversed(self.children) if child.process.poll() is None]
        if running:
            say(f"stopping {', '.join(child.name for child in running)}")
        for child in running:
            _signal_group(child.process.pid, child.stop_signal)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in running:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{child.name} did not stop in {STOP_TIMEOUT_SECONDS:.0f} s; killing it")
        for child in self.children:
            # Also reaps what a leader left behind in its group, such as chalice local's worker.
            _signal_group(child.process.pid, signal.SIGKILL)
            child.process.wait()
        if self.children:
            say("stopped")
        self.children.clear()


def say(message: str) -> None:
    print(f"devstack: {message}", flush=True)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has exited already
        os.killpg(pgid, signum)


def _dies_with_parent(signum: signal.Signals) -> Callable[[], None] | None:
    # If the runner itself is killed (kill -9, a crash), Linux still sends each child its stop signal.
    if _PRCTL is None:
        return None
    return lambda: _PRCTL(_PR_SET_PDEATHSIG, int(signum))


def _as_account(account: Account | None) -> dict[str, object]:
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}
