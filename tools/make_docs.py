"""Write the user documentation's step pages (docs/steps/*.md) from the built-in guide, the
screenshots in docs/images/gui and each step's parameter class (names, defaults, units and
meanings come from the code, so the pages stay true to it).

    .venv/bin/python tools/make_docs.py
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from rstem_app.params_form import field_docs, label_of, unit_of
from rstem_app.welcome import guide_text

from rstem_core import pipeline

ROOT = Path(__file__).resolve().parents[1]
#: page key -> (guide section title, steps whose parameters the page edits)
PAGES = {
    "project": ("Project", ()),
    "calibrate": ("Calibration", ("calibrate",)),
    "curate": ("Training set", ("curate",)),
    "denoise": ("Denoise", ("train", "denoise")),
    "refine": ("Tilt refinement", ("refine",)),
    "reconstruct": ("Reconstruction", ("reconstruct",)),
    "view3d": ("3D view", ()),
    "evaluate": ("Evaluate", ("evaluate",)),
    "export": ("Export", ()),
}


def guide_sections() -> dict[str, str]:
    parts = re.split(r"^## \d+\. (.+)$", guide_text(), flags=re.M)
    return {title.strip(): body.strip() for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        return ""
    if dataclasses.is_dataclass(value):
        return "see below"
    return "automatic" if value is None else json.dumps(value) if not isinstance(value, str) else value


def plain(text: str) -> str:
    """Docstring markup as Markdown: roles (:class:`~.network.UNet`) as their last name, ``x`` as `x`."""
    text = re.sub(r":\w+:`~?\.?([\w.]+)`", lambda m: m.group(1).split(".")[-1], text)
    return text.replace("``", "`")


def params_table(cls: type, prefix: str = "") -> list[str]:
    docs = field_docs(cls)
    rows, nested = [], []
    for f in dataclasses.fields(cls):
        kind, meaning = docs.get(f.name, ("", ""))
        _, unit = unit_of(f.name)
        rows.append(f"| {prefix}{label_of(f.name)} | `{f.name}` | {_default(f)} | {unit.strip()} | {plain(meaning)} |")
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if dataclasses.is_dataclass(value):
            nested.append((label_of(f.name), type(value)))
    out = ["| parameter | name in files and scripts | default | unit | what it means |", "|---|---|---|---|---|", *rows]
    for title, sub in nested:
        out += ["", f"{title}:", "", *params_table(sub)]
    return out


def main() -> None:
    sections = guide_sections()
    folder = ROOT / "docs" / "steps"
    folder.mkdir(parents=True, exist_ok=True)
    index = ["# User documentation", "", "One page per step, in the order of the window's list.", ""]
    for k, (key, (title, steps)) in enumerate(PAGES.items(), start=1):
        name = f"{k:02d}-{key}.md"
        lines = [f"# {k}. {title}", "", sections[title], "",
                 f"![{title}](../images/gui/{k:02d}_{key}.png)", ""]
        for step in steps:
            cls, _ = pipeline.get_step(step).load()
            lines += [f"## Parameters: {pipeline.get_step(step).title.lower()}", "",
                      f"On the page, in `rstem {step} --help`, and in `rstem run` (stored with the project).", "",
                      *params_table(cls), ""]
        (folder / name).write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
        index.append(f"{k}. [{title}](steps/{name})")
    index += ["", "When something goes wrong: [troubleshooting](troubleshooting.md).", ""]
    (ROOT / "docs" / "index.md").write_text("\n".join(index), encoding="utf-8")
    print(f"wrote {len(PAGES)} step pages and docs/index.md")


if __name__ == "__main__":
    main()
