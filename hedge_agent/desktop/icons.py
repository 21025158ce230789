"""Tray and program icons, drawn with Pillow: a coloured disc per health state with a white glyph on it, so
the state reads without colour too (tick, "!", cross, dots). No binary assets to ship."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from hedge_agent.desktop.tray_model import IconKind

COLOURS: dict[IconKind, tuple[int, int, int]] = {
    IconKind.OK: (46, 160, 67),
    IconKind.DEGRADED: (232, 160, 0),
    IconKind.DISCONNECTED: (212, 48, 48),
    IconKind.STOPPING: (96, 96, 96),  # dark grey: on the way out
    IconKind.STARTING: (150, 150, 150),  # light grey: not connected yet, nothing wrong
}
GLYPHS: dict[IconKind, str] = {
    IconKind.OK: "tick",
    IconKind.DEGRADED: "bang",
    IconKind.DISCONNECTED: "cross",
    IconKind.STOPPING: "dots",
    IconKind.STARTING: "dots",
}
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def draw_icon(kind: IconKind, size: int = 64) -> Image.Image:
    """A filled disc with a darker rim (visible on light and dark taskbars), transparent around it."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    r, g, b = COLOURS[kind]
    rim = (r * 3 // 5, g * 3 // 5, b * 3 // 5, 255)
    margin = max(1, size // 16)
    ImageDraw.Draw(image).ellipse(
        (margin, margin, size - 1 - margin, size - 1 - margin),
        fill=(r, g, b, 255),
        outline=rim,
        width=max(1, size // 12),
    )
    _glyph(ImageDraw.Draw(image), GLYPHS[kind], size)
    return image


def _glyph(draw: ImageDraw.ImageDraw, glyph: str, size: int) -> None:
    white = (255, 255, 255, 255)
    w = max(2, size // 9)

    def p(x: float, y: float) -> tuple[int, int]:
        return (round(x * size), round(y * size))

    if glyph == "tick":
        draw.line([p(0.28, 0.52), p(0.44, 0.68), p(0.72, 0.34)], fill=white, width=w, joint="curve")
    elif glyph == "cross":
        draw.line([p(0.32, 0.32), p(0.68, 0.68)], fill=white, width=w)
        draw.line([p(0.68, 0.32), p(0.32, 0.68)], fill=white, width=w)
    elif glyph == "bang":
        draw.line([p(0.5, 0.24), p(0.5, 0.58)], fill=white, width=w)
        r = w * 0.7
        cx, cy = p(0.5, 0.73)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=white)
    else:  # dots
        r = max(1.0, size / 16)
        for x in (0.3, 0.5, 0.7):
            cx, cy = p(x, 0.5)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=white)


def write_ico(path: Path, kind: IconKind = IconKind.OK) -> Path:
    """The program icon (.ico with the usual sizes), e.g. for the PyInstaller build."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_icon(kind, 256).save(path, format="ICO", sizes=ICO_SIZES)
    return path
