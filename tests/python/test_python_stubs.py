"""The type stubs of the native module are checked against the built module with
mypy's stubtest, not trusted: a method added, renamed or given another signature
in bindings/python/src without updating python/oncelog/_oncelog.pyi fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import oncelog


def test_stubs_match_the_built_module(tmp_path):
    package = Path(oncelog.__file__).parent
    assert (package / "_oncelog.pyi").is_file(), "the wheel ships no stubs"
    assert (package / "py.typed").is_file(), "the wheel ships no py.typed marker"
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "oncelog"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, f"stubtest found differences:\n{proc.stdout}\n{proc.stderr}"


def test_a_typed_program_checks(tmp_path):
    # The stubs are usable: mypy accepts a program using the API as documented and
    # catches a wrong argument type.
    good = tmp_path / "good.py"
    good.write_text(
        "import oncelog\n"
        "from oncelog import TopicPartition\n"
        "def run(path: str) -> int:\n"
        "    with oncelog.Store(path) as store:\n"
        "        store.create_topic('t', partitions=2, config={'retention.ms': -1})\n"
        "        with oncelog.Producer(store, {'acks': 'all'}) as p:\n"
        "            p.produce('t', b'v', key='k', headers={'h': b'x'})\n"
        "            n = p.produce_batch('t', [(b'k', b'v'), b'bare'])\n"
        "            with p.transaction():\n"
        "                pass\n"
        "        c = oncelog.Consumer(store, {'group.id': 'g'})\n"
        "        c.assign([TopicPartition('t', 0, oncelog.OFFSET_BEGINNING)])\n"
        "        msg = c.poll(1.0)\n"
        "        if msg is not None and msg.value is not None:\n"
        "            n += len(msg.value) + msg.offset\n"
        "        for m in c.consume(10, 0.1):\n"
        "            n += m.partition\n"
        "        c.close()\n"
        "        return n\n"
    )
    bad = tmp_path / "bad.py"
    bad.write_text("import oncelog\noncelog.Producer('x').produce('t', 42)\n")
    mypy = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy")]
    ok = subprocess.run([*mypy, str(good)], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    ko = subprocess.run([*mypy, str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert ko.returncode != 0 and "produce" in ko.stdout, ko.stdout
