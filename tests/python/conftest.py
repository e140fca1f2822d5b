"""Shared fixtures of the Python tests: the repository root and the kafka_fixture store."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def cargo() -> str:
    exe = os.environ.get("CARGO") or shutil.which("cargo")
    if not exe:
        pytest.fail("cargo is not on PATH: these tests build Rust examples")
    return exe


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    """Builds and runs `core/examples/<name>.rs` with `args`; fails the test with its output."""
    cmd = [cargo(), "run", "--locked", "--quiet", "-p", "oncelog", "--example", name, "--", *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="session")
def kafka_fixture(tmp_path_factory):
    """Runs the kafka_fixture example once: returns (partition dir, manifest dict)."""
    root = tmp_path_factory.mktemp("kafka_fixture")
    store = root / "store"
    manifest_path = root / "manifest.json"
    run_example("kafka_fixture", str(store), str(manifest_path))
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    return store / f"{manifest['topic']}-{manifest['partition']}", manifest


@pytest.fixture
def store_dir(tmp_path) -> Path:
    """A fresh directory for a store (not created yet)."""
    return tmp_path / "store"


@pytest.fixture
def store(store_dir):
    """An open oncelog.Store in a fresh directory, closed after the test."""
    oncelog = pytest.importorskip("oncelog")
    s = oncelog.Store(store_dir)
    yield s
    s.close()


def first_with(procs: list, prefix: str, timeout: float = 60.0):
    """The first of `procs` to print a line starting with `prefix`."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.has(prefix):
                return p
        time.sleep(0.001)
    pytest.fail(f"none printed {prefix!r} within {timeout} s\n" + "\n".join(p.report() for p in procs))


class Proc:
    """A child process whose output is drained by two threads (so that it never
    blocks on a full pipe) and read line by line, with timeouts."""

    def __init__(self, name: str, cmd: list, **kwargs):
        import subprocess
        import threading

        self.name = name
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, **kwargs
        )
        self.lines: list = []
        self.err_lines: list = []
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self.err_lines), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _drain(self, pipe, into: list) -> None:
        for raw in iter(pipe.readline, b""):
            with self._changed:
                into.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def expect(self, prefix: str, timeout: float = 60.0) -> str:
        """Waits for a line starting with `prefix` (seen before or new); returns it."""
        import time

        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if line.startswith(prefix):
                        return line
                seen = len(self.lines)
                done = not self._threads[0].is_alive()
                left = deadline - time.monotonic()
                if done or left <= 0:
                    break
                self._changed.wait(min(left, 0.5))
        if done:
            self.proc.wait()
            pytest.fail(f"{self.name} ended without a line {prefix!r}\n{self.report()}")
        self.kill()
        pytest.fail(f"{self.name}: no line {prefix!r} within {timeout} s\n{self.report()}")

    def has(self, prefix: str) -> bool:
        """Whether a line starting with `prefix` came (never waits)."""
        with self._changed:
            return any(line.startswith(prefix) for line in self.lines)

    def kill(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def finish(self, timeout: float = 60.0) -> int:
        """Waits for the exit and the end of its output; returns the exit code."""
        import subprocess

        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} did not finish within {timeout} s\n{self.report()}")
        for t in self._threads:
            t.join(10)
        return code

    def stderr(self) -> str:
        return "\n".join(self.err_lines)

    def report(self) -> str:
        tail = "\n".join(self.lines[-20:])
        return f"--- last lines of {self.name}\n{tail}\n--- stderr\n{self.stderr()[-3000:]}"
