"""Finding a Chinese font through fontconfig, so no install path is hard-coded.

matplotlib draws any outline (Noto Sans CJK's CFF is preferred); reportlab embeds
TrueType outlines only, so the PDF asks for a TrueType face (WenQuanYi Zen Hei, AR PL
UMing). ``fc-list`` answers both questions; the family lists are tried in order.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gateway.errors import GatewayError

CHART_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "AR PL UMing CN")
PDF_FAMILIES = ("WenQuanYi Zen Hei", "AR PL UMing CN", "AR PL UMing TW MBE", "Droid Sans Fallback")


class FontMissing(GatewayError):
    """No Chinese font the report can use is installed."""

    exit_code = 5
    remedy = "install fonts-noto-cjk and fonts-wqy-zenhei (apt-get install fonts-noto-cjk fonts-wqy-zenhei)"


@dataclass(frozen=True)
class FontFace:
    family: str
    path: Path
    index: int
    """The face's index inside a .ttc collection (0 for a single-font file)."""
    truetype: bool


@cache
def chinese_faces() -> tuple[FontFace, ...]:
    """Every installed face that covers Chinese, as fontconfig lists them."""
    if shutil.which("fc-list") is None:
        raise FontMissing("fontconfig's fc-list is not installed", remedy="apt-get install fontconfig")
    listing = subprocess.run(
        ["fc-list", ":lang=zh", "--format", "%{file}\t%{index}\t%{fontformat}\t%{family}\t%{style}\n"],
        capture_output=True, text=True, check=True,
    ).stdout
    faces = []
    for line in listing.splitlines():
        path, index, fontformat, families, style = (line.split("\t") + [""] * 5)[:5]
        for family in families.split(","):
            face = FontFace(family.strip(), Path(path), int(index or 0), fontformat == "TrueType")
            faces.append((_weight(style), str(face.path), face.index, face))
    return tuple(face for *_, face in sorted(faces, key=lambda item: item[:3]))


def _weight(style: str) -> int:
    """Regular faces first: the report's body text is not bold."""
    return 0 if any(word in style for word in ("Regular", "Book", "Medium")) else 1


def find_face(families: tuple[str, ...], *, truetype_only: bool = False) -> FontFace:
    """The first face of ``families`` (in that order) that is installed."""
    faces = [f for f in chinese_faces() if f.truetype or not truetype_only]
    for family in families:
        for face in faces:
            if face.family == family:
                return face
    if faces:
        return faces[0]
    kind = "TrueType Chinese font" if truetype_only else "Chinese font"
    raise FontMissing(f"no {kind} found (tried {', '.join(families)})")
