"""Shared helpers of the engine benchmarks (``p2``, ``p3``): the real Pulumi CLI, offline.

A :class:`PulumiProject` is a throw-away project directory (``Pulumi.yaml`` + ``__main__.py``)
with a private file backend; its commands run with the environment printed by
``tools/pulumi_host/pulumi-env.sh --format json`` (the same one ``make``, the demo and the e2e tests
use). :class:`ProcessSampler` follows the peak memory, CPU time and start time of the
dynamic-provider processes a command starts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench_common import peak_rss_mb
from dicom_transfer_pulumi_host.environment import checkout_environment

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
PARALLEL_ENV = "PULUMI_PARALLEL"
"""The engine's default ``--parallel``; empty = its own default, 4 x CPUs."""
PROVIDER_MARKER = "pulumi.dynamic"
"""In the command line of every dynamic-provider process (``tools/pulumi_host/plugins`` shim)."""


LOWEST_VENV = REPO / ".venv-sdk-lowest"
"""The lowest leg of the SDK matrix (``make setup-lowest``: ``lock-sdk-lowest.txt``)."""


def offline_env(state_dir: Path, python: Path | None = None) -> dict[str, str]:
    """``os.environ`` plus the offline Pulumi settings, state under ``state_dir``.

    Args:
        state_dir: The file backend's directory.
        python: Interpreter of the language host, the program and the dynamic-provider process
            (default: the checkout's ``.venv``); its virtualenv is activated for them.

    Raises:
        RuntimeError: ``tools/pulumi_host/pulumi-env.sh`` could not provide a CLI (its message).
    """
    env = checkout_environment(REPO, state_dir=state_dir, python=python)
    if python is not None:
        # The plugin shims prefer an active virtualenv (tools/pulumi_host/plugins).
        venv = python.parent.parent
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env["PATH"]])
    return env


def sdk_matrix_pythons() -> list[Path]:
    """The interpreters of the SDK matrix: this one (``.venv``: the newest locked SDK), lowest.

    Raises:
        RuntimeError: ``.venv-sdk-lowest`` is missing (``make setup-lowest`` makes it).
    """
    lowest = LOWEST_VENV / "bin" / "python"
    if not lowest.exists():
        raise RuntimeError(
            f"{lowest} not found: run `make setup-lowest` (the lowest pulumi SDK of the matrix)"
        )
    return [Path(sys.executable), lowest]


def sdk_version(python: Path) -> str:
    """The ``pulumi`` SDK version installed for ``python``."""
    code = "from importlib.metadata import version; print(version('pulumi'))"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


@dataclass(frozen=True)
class Timed:
    """One finished ``pulumi`` command."""

    seconds: float
    stdout: str
    stderr: str


@dataclass
class PulumiProject:
    """A project directory and its private state, driven through the ``pulumi`` CLI.

    Attributes:
        root: Scratch directory (``project/`` and ``state/`` are made under it).
        program: Source of ``__main__.py``.
        env: Extra environment of every command (endpoints, journal directory, ...).
        python: Interpreter of the program and its providers (default: the checkout's venv).
    """

    root: Path
    program: str
    env: Mapping[str, str] = field(default_factory=dict)
    python: Path | None = None
    _base_env: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.project_dir.mkdir(parents=True, exist_ok=True)
        (self.project_dir / "Pulumi.yaml").write_text(f"name: {self.root.name}\nruntime: python\n")
        (self.project_dir / "__main__.py").write_text(self.program)
        self._base_env = offline_env(self.root / "state", self.python)
        # The benchmarks directory holds importable helper providers (pickled by reference).
        self._base_env["PYTHONPATH"] = os.pathsep.join(
            [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        )

    @property
    def project_dir(self) -> Path:
        """Where ``Pulumi.yaml`` and ``__main__.py`` are."""
        return self.root / "project"

    def new_stack(self, name: str, config: Mapping[str, str]) -> None:
        """Creates stack ``name`` with plain (non-secret) configuration values."""
        self.run("stack", "init", name)
        for key, value in config.items():
            self.run("config", "set", "--stack", name, key, value)

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        sampler: ProcessSampler | None = None,
    ) -> Timed:
        """Runs ``pulumi ARGS`` non-interactively and times it (start to exit).

        Args:
            *args: Arguments after ``pulumi``.
            env: More environment for this command only.
            sampler: Follows the command's provider processes while it runs.

        Raises:
            RuntimeError: The command failed (with the end of its output).
        """
        command = ["pulumi", *args, "--non-interactive", "--color", "never"]
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=self.project_dir,
            env={**self._base_env, **self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if sampler is not None:
            sampler.start(process.pid)
        try:
            stdout, stderr = process.communicate()
        finally:
            if sampler is not None:
                sampler.stop()
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(
                f"`pulumi {' '.join(args)}` exited {process.returncode}\n"
                f"--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
            )
        return Timed(seconds, stdout, stderr)


_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stats() -> dict[int, list[str]]:
    """The fields after the command name of every process's ``/proc/PID/stat``."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name (2nd field) is in parentheses and may hold spaces.
        stats[int(entry)] = stat.rsplit(")", 1)[1].split()
    return stats


def _descendants(pid: int, stats: dict[int, list[str]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class ProviderProcess:
    """What was seen of one dynamic-provider process.

    Attributes:
        peak_rss_mb: Its peak resident set size (``VmHWM``) at the last sample.
        cpu_s: User + system CPU time at the last sample.
        started_s: When it started, in seconds after the command started.
    """

    peak_rss_mb: float
    cpu_s: float
    started_s: float


class ProcessSampler:
    """Polls the dynamic-provider processes of a command: peak RSS, CPU time, start time.

    Only descendants of the command are looked at (others may run providers meanwhile);
    a provider is recognised by ``marker`` (default :data:`PROVIDER_MARKER`) in its command
    line. The processes live for the whole command, so a 50 ms poll sees each one many times
    before it exits.
    """

    def __init__(self, interval_s: float = 0.05, marker: str = PROVIDER_MARKER) -> None:
        self.interval_s = interval_s
        self.marker = marker
        self.processes: dict[int, ProviderProcess] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def start(self, root_pid: int) -> None:
        """Starts polling the descendants of ``root_pid`` in a thread."""
        self._started = time.clock_gettime(time.CLOCK_BOOTTIME)
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, args=(root_pid,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops polling (the last sample was taken before the processes exited)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _poll(self, root_pid: int) -> None:
        while not self._stop.is_set():
            stats = _stats()
            for pid in _descendants(root_pid, stats):
                if self.marker not in _cmdline(pid):
                    continue
                try:
                    peak = peak_rss_mb(pid)
                except (OSError, RuntimeError):
                    continue  # exited, or a zombie without memory figures
                # Fields 14-15 (utime, stime) and 22 (starttime) of proc(5), in clock ticks.
                fields = stats[pid]
                cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
                started_s = int(fields[19]) / _TICKS_PER_S - self._started
                self.processes[pid] = ProviderProcess(peak, cpu_s, started_s)
            self._stop.wait(self.interval_s)


def default_parallel(project: PulumiProject, env: Mapping[str, str] | None = None) -> int | None:
    """The engine's default ``--parallel`` (``PULUMI_PARALLEL``, else 4 x CPUs), from help."""
    help_text = project.run("up", "--help", env=env).stdout
    found = re.search(r"--parallel\b.*\(default (\d+)\)", help_text)
    return int(found.group(1)) if found else None
