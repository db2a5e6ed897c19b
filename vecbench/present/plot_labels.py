"""Point labels that never overprint: a deterministic greedy placement in display space.

Each label is tried at a fixed sequence of offsets around its point (rings of growing radius,
eight directions each) and takes the first spot that lies inside the axes and overlaps neither
a label placed before it, nor the axes' other texts and legend, nor a data marker; failing that,
the first spot that overlaps no text; failing that, the free spot nearest the point on a grid
over the whole axes; failing that (a full axes), a spot beside the axes. The same input always
gives the same layout. The figure's layout must be final first (placement is measured on the
drawn figure), which is why the annotations are kept out of the constrained layout.
"""

from __future__ import annotations

import numpy as np

#: Directions tried at each radius, in order: right, up-right, up, up-left, left, ...
_DIRECTIONS = [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)]
_RADII_PT = (6, 14, 24, 36, 50, 66, 84, 104, 126, 150)
_PAD_PX = 2.0
_MARKER_PX = 4.0
_SCAN_PX = 6.0


def _overlaps(box, boxes) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in boxes)


def _inside(box, frame) -> bool:
    return box[0] >= frame[0] and box[1] >= frame[1] and box[2] <= frame[2] and box[3] <= frame[3]


def _scan(frame, width, height, anchor, taken, markers):
    """The free box nearest ``anchor`` on a grid over the whole axes (no text overlapped;
    no marker either if possible), or None."""
    xs = np.arange(frame[0], frame[2] - width + 1e-9, _SCAN_PX)
    ys = np.arange(frame[1], frame[3] - height + 1e-9, _SCAN_PX)
    if not len(xs) or not len(ys):
        return None
    gx, gy = np.meshgrid(xs, ys)
    centres = np.column_stack([gx.ravel() + width / 2, gy.ravel() + height / 2])
    order = np.argsort(np.hypot(*(centres - anchor).T), kind="stable")
    free = None
    for i in order:
        x0, y0 = centres[i] - (width / 2, height / 2)
        box = (x0, y0, x0 + width, y0 + height)
        if _overlaps(box, taken):
            continue
        if not _overlaps(box, markers):
            return box
        free = free or box
    return free


def text_boxes(fig, artists) -> list[tuple[float, float, float, float]]:
    """Display-space boxes (x0, y0, x1, y1) of the visible, non-empty texts (and legends)."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    boxes = []
    for artist in artists:
        if artist is None or not artist.get_visible():
            continue
        if isinstance(artist, Text) and not artist.get_text():
            continue
        # an Annotation's own extent includes its arrow: the text alone is what must not overlap
        measure = Text.get_window_extent if isinstance(artist, Text) else None
        b = measure(artist, renderer) if measure else artist.get_window_extent(renderer)
        boxes.append((b.x0, b.y0, b.x1, b.y1))
    return boxes


def place_labels(ax, items, avoid_points=None, **text_style) -> list:
    """Annotate ``items`` [(x, y, text), ...] (data coordinates) without overprinting.

    ``avoid_points`` (an (n, 2) array in data coordinates) are markers labels should not cover.
    Returns the annotations, in the order of ``items``.
    """
    fig = ax.figure
    fig.draw_without_rendering()  # the constrained layout settles before anything is measured
    renderer = fig.canvas.get_renderer()
    frame_box = ax.get_window_extent(renderer)
    frame = (frame_box.x0, frame_box.y0, frame_box.x1, frame_box.y1)
    from matplotlib.text import Text

    taken = text_boxes(fig, [*(c for c in ax.get_children() if isinstance(c, Text)),
                             ax.get_legend(), *fig.legends])
    markers = []
    if avoid_points is not None and len(avoid_points):
        points = ax.transData.transform(np.asarray(avoid_points, float))
        points = points[np.isfinite(points).all(axis=1)]
        markers = [(px - _MARKER_PX, py - _MARKER_PX, px + _MARKER_PX, py + _MARKER_PX)
                   for px, py in points]
    style = {"fontsize": 7, "color": "tab:red", **text_style}
    px_per_pt = fig.dpi / 72.0
    annotations = []
    for x, y, text in items:
        probe = ax.text(0, 0, text, **style)
        size = probe.get_window_extent(renderer)
        probe.remove()
        width, height = size.width + 2 * _PAD_PX, size.height + 2 * _PAD_PX
        ax_, ay_ = ax.transData.transform((x, y))
        fallback, chosen = None, None
        for radius in _RADII_PT:
            for dx, dy in _DIRECTIONS:
                cx = ax_ + dx * radius * px_per_pt
                cy = ay_ + dy * radius * px_per_pt
                x0 = cx if dx > 0 else (cx - width if dx < 0 else cx - width / 2)
                y0 = cy if dy > 0 else (cy - height if dy < 0 else cy - height / 2)
                box = (x0, y0, x0 + width, y0 + height)
                if not _inside(box, frame) or _overlaps(box, taken):
                    continue
                if not _overlaps(box, markers):
                    chosen = box
                    break
                fallback = fallback or box
            if chosen:
                break
        box = chosen or fallback or _scan(frame, width, height, (ax_, ay_), taken, markers)
        if box is None:  # nowhere free inside the axes: beside the axes, below what is taken
            lowest = min([b[1] for b in taken if b[0] >= frame[2]] + [frame[3]])
            box = (frame[2] + _PAD_PX, lowest - height, frame[2] + _PAD_PX + width, lowest)
        offset = ((box[0] + _PAD_PX - ax_) / px_per_pt, (box[1] + _PAD_PX - ay_) / px_per_pt)
        note = ax.annotate(text, (x, y), xytext=offset, textcoords="offset points", ha="left",
                           va="bottom", arrowprops={"arrowstyle": "-", "color": style["color"],
                                                    "lw": 0.6, "shrinkA": 0, "shrinkB": 2},
                           annotation_clip=False, **style)
        note.set_in_layout(False)
        taken.append(box)
        annotations.append(note)
    return annotations
