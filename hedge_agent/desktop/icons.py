"""Tray and program icons, drawn with Pillow: a coloured disc per health state (no binary assets to ship)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from hedge_agent.desktop.tray_model import IconKind

COLOURS: dict[IconKind, tuple[int, int, int]] = {
    IconKind.OK: (46, 160, 67),
    IconKind.DEGRADED: (232, 160, 0),
    IconKind.DISCONNECTED: (212, 48, 48),
    IconKind.STOPPING: (128, 128, 128),
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
    return image


def write_ico(path: Path, kind: IconKind = IconKind.OK) -> Path:
    """The program icon (.ico with the usual sizes), e.g. for the PyInstaller build."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_icon(kind, 256).save(path, format="ICO", sizes=ICO_SIZES)
    return path
