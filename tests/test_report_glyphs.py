"""Every character of a regulator's PDF report has a glyph: the report's font is Adobe's STSong-Light
(Adobe-GB1), which a PDF reader draws through the UniGB-UCS2-H CMap; a character the CMap does not map
prints as a box ("CO�", "m�/万元"). The oracle is Adobe's own CMap file as poppler-data ships it, parsed
here, not parkmon's substitution table."""

from __future__ import annotations

import re
from pathlib import Path

from pypdf import PdfReader

from analytics.report.cli import main as report_main
from ingest.store import Store
from tests.test_report import _seed

CMAP = Path("/usr/share/poppler/cMap/Adobe-GB1/UniGB-UCS2-H")  # apt poppler-data (./dev.sh test installs it)


def _mapped() -> set[int]:
    text = CMAP.read_text(encoding="latin-1")
    codes: set[int] = set()
    for block in re.findall(r"begincidrange(.*?)endcidrange", text, re.S):
        for lo, hi, _ in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*(\d+)", block):
            codes.update(range(int(lo, 16), int(hi, 16) + 1))
    for block in re.findall(r"begincidchar(.*?)endcidchar", text, re.S):
        codes.update(int(c, 16) for c, _ in re.findall(r"<([0-9a-fA-F]+)>\s*(\d+)", block))
    return codes


def test_the_cmap_oracle_itself_knows_the_characters_that_broke() -> None:
    mapped = _mapped()
    assert ord("万") in mapped and ord("C") in mapped and ord("—") in mapped
    assert not {ord("₂"), ord("³"), ord("·")} & mapped  # the three the issue saw printed as boxes


def test_park_and_region_pdfs_print_every_character(store: Store, store_url: str, tmp_path: Path) -> None:
    _seed(store)
    assert report_main(["--db", store_url, "--park", "demo", "--period", "2026-01", "--out", str(tmp_path),
                        "--format", "pdf"]) == 0
    assert report_main(["--db", store_url, "--region", "呼和浩特", "--period", "2026-01", "--out", str(tmp_path),
                        "--format", "pdf"]) == 0
    mapped = _mapped()
    for name in ("demo-2026-01.pdf", "region-呼和浩特-2026-01.pdf"):
        text = "".join(page.extract_text() for page in PdfReader(tmp_path / name).pages)
        missing = sorted({ch for ch in text if not ch.isspace() and ord(ch) not in mapped})
        assert not missing, f"{name}: no glyph for {missing}"
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "demo-2026-01.pdf").pages)
    # the units still read as units: the subscript and superscript become raised/lowered digits
    assert "tCO2/tce" in text and "CO2 t" in text and "(m3/万元)" in text
    assert "月度监测报告 ・ Demo park" in text  # the title's separator, GB 2312's middle dot
