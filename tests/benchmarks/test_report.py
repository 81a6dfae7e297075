"""The report parts every benchmark shares: its own section of the doc, the machine line."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import machine, write_section


def test_a_section_is_replaced_in_place_and_the_rest_is_left_alone(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## A\n\nold a\n\n## B\n\nold b\n", encoding="utf-8")
    write_section("## A\n\nnew a\n", section="## A", path=doc)
    assert doc.read_text(encoding="utf-8") == "# Benchmarks\n\n## A\n\nnew a\n\n## B\n\nold b\n"
    write_section("## C\n\nc\n", section="## C", path=doc)
    assert doc.read_text(encoding="utf-8").endswith("## B\n\nold b\n\n## C\n\nc\n")


def test_a_missing_doc_is_started(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "benchmarks.md"
    write_section("## A\n\na", section="## A", path=doc)
    assert doc.read_text(encoding="utf-8") == "# Benchmarks\n\n## A\n\na\n"


def test_the_machine_line_names_cpus_python_and_packages() -> None:
    line = machine(("httpx",))
    assert " CPUs (" in line
    assert "Python 3." in line
    assert line.endswith(f"; httpx {__import__('httpx').__version__}")
