"""Figures for reports and UIs: frames beside colour-wheel flows, rankings, confusion matrices, with captions.

Everything is `(H, W, 3) uint8` RGB, drawn with OpenCV. Made to be read at 100 % zoom in a browser:
captions are at least CAPTION_PX high (capital letters), wrapped instead of cut, and tiles at least
MIN_TILE_PX (small frames are upscaled by nearest neighbour, so pixels stay pixels).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from im2flow_core.flow_viz import flow_to_color

CAPTION_PX = 13
"""Height of a capital letter in every caption, in pixels (about a 12-point browser font)."""
MIN_TILE_PX = 128
"""The smallest tile side a frame or flow is drawn at."""
FONT = cv2.FONT_HERSHEY_SIMPLEX
_MARGIN = 6


def _font_scale(cap_px: int = CAPTION_PX) -> float:
    height = cv2.getTextSize("H", FONT, 1.0, 1)[0][1]
    return cap_px / height


def text_width(text: str, cap_px: int = CAPTION_PX) -> int:
    """The width in pixels of `text` drawn at `cap_px`."""
    return cv2.getTextSize(text, FONT, _font_scale(cap_px), 1)[0][0]


def wrap_text(text: str, width: int, cap_px: int = CAPTION_PX) -> list[str]:
    """`text` broken into lines that fit `width` px (at word boundaries; a single over-long word is split)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if text_width(candidate, cap_px) <= width - 2 * _MARGIN:
            current = candidate
            continue
        if current:
            lines.append(current)
        while text_width(word, cap_px) > width - 2 * _MARGIN and len(word) > 1:
            cut = len(word)
            while cut > 1 and text_width(word[:cut], cap_px) > width - 2 * _MARGIN:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines or [""]


def text_block(text: str, width: int, cap_px: int = CAPTION_PX) -> np.ndarray:
    """A white band `width` px wide holding `text` in black, wrapped to as many lines as it needs."""
    lines = wrap_text(text, width, cap_px)
    line_h = round(cap_px * 1.8)
    band = np.full((line_h * len(lines) + _MARGIN, width, 3), 255, np.uint8)
    scale = _font_scale(cap_px)
    for i, line in enumerate(lines):
        cv2.putText(band, line, (_MARGIN, _MARGIN + i * line_h + cap_px), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return band


def captioned(image: np.ndarray, text: str, cap_px: int = CAPTION_PX) -> np.ndarray:
    """`image` under its caption `text` (wrapped to the image's width, never cut)."""
    return np.concatenate([text_block(text, image.shape[1], cap_px), image], axis=0)


def tile(image: np.ndarray, height: int = MIN_TILE_PX) -> np.ndarray:
    """`image` resized to `height` px high (its aspect kept): nearest neighbour when enlarging, area when shrinking."""
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    enlarge = height >= image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST if enlarge else cv2.INTER_AREA)


def flow_row(rgb: np.ndarray, flows: list[np.ndarray], caption: str, scale: float | None = None,
             tile_px: int = MIN_TILE_PX) -> np.ndarray:
    """One row: the frame `(H, W, 3)`, then each flow `(H, W, 2)` px in colour (one shared scale), each
    `tile_px` high, under `caption`."""
    peak = scale or max(max(float(np.linalg.norm(f, axis=-1).max()) for f in flows), 1e-3)
    cells = [tile(rgb, tile_px)] + [tile(flow_to_color(f, peak), tile_px) for f in flows]
    width = cells[0].shape[1]
    cells = [c if c.shape[1] == width else cv2.resize(c, (width, tile_px), interpolation=cv2.INTER_NEAREST)
             for c in cells]
    gap = np.full((tile_px, 4, 3), 255, np.uint8)
    body = np.concatenate([x for c in cells for x in (c, gap)][:-1], axis=1)
    return captioned(body, caption)


def column_header(names: list[str], cell_width: int, gap: int = 4) -> np.ndarray:
    """A band naming each column of a grid whose cells are `cell_width` px wide with `gap` px between them."""
    blocks = []
    for i, name in enumerate(names):
        blocks.append(text_block(name, cell_width))
        if i < len(names) - 1:
            blocks.append(np.full((blocks[-1].shape[0], gap, 3), 255, np.uint8))
    height = max(b.shape[0] for b in blocks)
    blocks = [np.pad(b, ((0, height - b.shape[0]), (0, 0), (0, 0)), constant_values=255) for b in blocks]
    return np.concatenate(blocks, axis=1)


def stack_rows(rows: list[np.ndarray], title: str, columns: list[str] | None = None,
               cell_width: int | None = None) -> np.ndarray:
    """Rows under a title (and, with `columns` and their `cell_width`, a header naming the columns), padded
    white to the widest: `(H, W, 3) uint8` RGB."""
    width = max(r.shape[1] for r in rows)
    parts = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    if columns and cell_width:
        header = column_header(columns, cell_width)
        parts.insert(0, np.pad(header, ((0, 0), (0, max(0, width - header.shape[1])), (0, 0)),
                               constant_values=255)[:, :width])
    spaced = [x for p in parts for x in (p, np.full((6, width, 3), 255, np.uint8))][:-1]
    return captioned(np.concatenate(spaced, axis=0), title, cap_px=CAPTION_PX + 3)


def potential_gallery(extremes: list[dict[str, Any]], rank_of: dict[str, int], per_row: int = 3) -> np.ndarray:
    """The top and bottom of a motion-potential ranking (`extremes` in rank order, each with `image`, `rgb`,
    `flow`, `potential_px` and optionally `true_mean_magnitude_px`): cells of frame | predicted flow with
    their rank, potential, true motion (when known) and file name, `per_row` cells a row, one colour scale."""
    scale = max(max(float(np.linalg.norm(e["flow"], axis=-1).max()) for e in extremes), 1e-3)
    cells = []
    for e in extremes:
        truth = e.get("true_mean_magnitude_px", float("nan"))
        true_text = f", true {truth:.3f} px" if truth == truth else ""  # NaN: no truth for a still
        name = e["image"].rsplit("/", 1)[-1]
        cells.append(flow_row(e["rgb"], [e["flow"]], f"#{rank_of[e['image']]}: {e['potential_px']:.3f} px"
                              f"{true_text}; {name}", scale))
    rows = []
    for start in range(0, len(cells), per_row):
        group = cells[start:start + per_row]
        height = max(c.shape[0] for c in group)
        group = [np.pad(c, ((0, height - c.shape[0]), (0, 0), (0, 0)), constant_values=255) for c in group]
        gap = np.full((height, 12, 3), 255, np.uint8)
        rows.append(np.concatenate([x for c in group for x in (c, gap)][:-1], axis=1))
    return stack_rows(rows, "Top and bottom of the ranking by motion potential (each: frame | predicted flow, "
                            "colours on one scale)")


def confusion_image(matrix: np.ndarray, labels: list[str], title: str, cell: int = 44) -> np.ndarray:
    """A confusion matrix `(C, C)` (rows true, columns predicted) as a heat map with counts, RGB uint8.

    Full size: `cell` px a class, labels and counts at CAPTION_PX (a 101-class matrix is ~4,800 px wide);
    embedded copies are shrunk by `png_data_uri`, the file keeps every count legible.
    """
    n = len(labels)
    scale = _font_scale()
    margin = max(text_width(name) for name in labels) + 2 * _MARGIN
    image = np.full((margin + n * cell, margin + n * cell, 3), 255, np.uint8)
    rows = matrix.sum(1, keepdims=True).clip(min=1)
    share = matrix / rows  # per true class, so rare classes show as clearly as common ones
    baseline = cell // 2 + CAPTION_PX // 2
    for i in range(n):
        cv2.putText(image, labels[i], (_MARGIN, margin + i * cell + baseline), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(n):
            y, x = margin + i * cell, margin + j * cell
            shade = int(255 - 200 * share[i, j])
            cv2.rectangle(image, (x, y), (x + cell - 2, y + cell - 2), (shade, shade, 255), -1)
            count = str(int(matrix[i, j]))
            cv2.putText(image, count, (x + (cell - text_width(count)) // 2, y + baseline), FONT, scale, (0, 0, 0), 1,
                        cv2.LINE_AA)
    # Column names, rotated so long names fit above the columns.
    strip = np.full((n * cell, margin, 3), 255, np.uint8)
    for j in range(n):
        cv2.putText(strip, labels[j], (_MARGIN, j * cell + baseline), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    image[:margin, margin:] = np.rot90(strip, 1)
    width = max(image.shape[1], 420)  # room for the title on a small matrix
    image = np.pad(image, ((0, 0), (0, width - image.shape[1]), (0, 0)), constant_values=255)
    return captioned(image, f"{title} (rows: true class, columns: predicted class)", cap_px=CAPTION_PX + 2)
