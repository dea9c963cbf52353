"""The user documentation names every parameter of every step (tools/make_docs.py writes it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rstem_core import pipeline

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = {"calibrate": "02-calibrate.md", "curate": "03-curate.md", "train": "04-denoise.md",
         "denoise": "04-denoise.md", "refine": "05-refine.md", "reconstruct": "06-reconstruct.md",
         "evaluate": "08-evaluate.md"}


@pytest.mark.parametrize("step", sorted(PAGES))
def test_every_parameter_is_documented(step: str) -> None:
    page = (DOCS / "steps" / PAGES[step]).read_text(encoding="utf-8")
    cls, _ = pipeline.get_step(step).load()
    missing = [f.name for f in dataclasses.fields(cls) if f"`{f.name}`" not in page]
    assert not missing, f"docs/steps/{PAGES[step]} lacks {missing}: run tools/make_docs.py"


def test_index_links_every_step_page_and_its_picture() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for page in sorted((DOCS / "steps").glob("*.md")):
        assert f"steps/{page.name}" in index
        image = page.read_text(encoding="utf-8").split("](../images/gui/")[1].split(")")[0]
        assert (DOCS / "images" / "gui" / image).is_file()
