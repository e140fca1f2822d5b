"""README.md cannot rot: its Rust example is the crate doctest that `cargo test` runs,
its links and paths exist, and every `make` target it names is in the Makefile."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
LIB_RS = REPO / "core" / "src" / "lib.rs"

FENCE = re.compile(r"^```(.*)$")


def code_blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """(info string, lines) of every fenced code block."""
    blocks, info, body = [], None, []
    for line in lines:
        m = FENCE.match(line.strip())
        if m and info is None:
            info, body = m.group(1).strip(), []
        elif m and line.strip() == "```":
            blocks.append((info, body))
            info = None
        elif info is not None:
            body.append(line)
    assert info is None, "unclosed code block"
    return blocks


def crate_doc_lines() -> list[str]:
    out = []
    for line in LIB_RS.read_text(encoding="utf-8").splitlines():
        if line.startswith("//!"):
            out.append(line[4:] if line.startswith("//! ") else line[3:])
    return out


def rustdoc_visible(lines: list[str]) -> list[str]:
    """The lines rustdoc shows: `# ` lines (and a lone `#`) are hidden, `##` shows `#`."""
    shown = []
    for line in lines:
        s = line.lstrip()
        if s == "#" or s.startswith("# "):
            continue
        if s.startswith("##"):
            line = line.replace("##", "#", 1)
        shown.append(line)
    return shown


def test_readme_rust_example_is_the_crate_doctest():
    doc_blocks = code_blocks(crate_doc_lines())
    assert doc_blocks, "core/src/lib.rs has no doctest in its crate doc"
    info, doctest = doc_blocks[0]
    attrs = {a.strip() for a in info.split(",") if a.strip()}
    assert attrs <= {"rust", "edition2021", "edition2024"}, (
        f"the crate doctest is marked {info!r}: it must compile and run under cargo test"
    )
    readme_rust = [body for info, body in code_blocks(README.read_text(encoding="utf-8").splitlines()) if info == "rust"]
    assert len(readme_rust) == 1, f"README.md should have one rust block, has {len(readme_rust)}"
    expected = rustdoc_visible(doctest)
    assert readme_rust[0] == expected, (
        "README.md's rust block differs from the crate doctest in core/src/lib.rs as "
        "rustdoc shows it (hidden '# ' lines left out); copy it over:\n" + "\n".join(expected)
    )


def test_readme_links_and_paths_exist():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text)
    assert links, "README.md links to nothing"
    for link in links:
        if "://" in link:
            continue
        assert (REPO / link).exists(), f"README.md links to {link}, which does not exist"
    # The layout block: the first word of each line is a path that must exist.
    layout = [body for info, body in code_blocks(text.splitlines()) if info == ""]
    assert layout, "README.md has no layout block"
    for line in layout[0]:
        path = line.split()[0] if line.strip() else ""
        if not path:
            continue
        if not line.startswith(" "):
            assert (REPO / path).exists(), f"README.md layout lists {path}, which does not exist"
        else:
            parent = next(l.split()[0] for l in reversed(layout[0][: layout[0].index(line)]) if not l.startswith(" "))
            assert (REPO / parent / path).exists(), f"README.md layout lists {parent}{path}, which does not exist"


def test_every_make_target_the_readme_names_exists():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-zA-Z_-]+):", makefile, re.M))
    named = set(re.findall(r"`make (\w[\w-]*)`|^make (\w[\w-]*)", README.read_text(encoding="utf-8"), re.M))
    named = {a or b for a, b in named}
    assert {"test", "demo"} <= named, f"README.md must give `make test` and the main job; names {named}"
    missing = named - targets
    assert not missing, f"README.md names make targets the Makefile lacks: {sorted(missing)}"


def readme_section_blocks(title: str, language: str) -> list[list[str]]:
    """The `language` code blocks of the README section headed `title`."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [body for info, body in code_blocks(lines[start + 1 : end]) if info == language]


def test_readme_python_example_runs(tmp_path):
    import subprocess
    import sys

    blocks = readme_section_blocks("Using oncelog from Python", "python")
    assert len(blocks) == 1, "README.md's Python section should have one python block"
    script = tmp_path / "readme_example.py"
    script.write_text("\n".join(blocks[0]) + "\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, f"README's Python example failed:\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("orders ") for line in lines), proc.stdout
    assert {line.split()[-1] for line in lines} == {"b'hello'", "b'bulk'"}
