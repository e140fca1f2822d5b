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
