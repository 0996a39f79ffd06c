"""Figures of a filled table (PNG, matplotlib): a metric against the swept setting (Figure 5's
prompt counts, the lambda curve), and accuracy against compute per method."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from .formats import SHORTENED, UNEVEN
from .table import FilledTable

#: What the marks after a point's name say, as the tables' notes say it.
_MARKS_SAID = {
    UNEVEN: f"{UNEVEN}: trained or measured unlike the other cells (report.md lists how)",
    SHORTENED: f"{SHORTENED}: runs cut short, not the protocol's",
}


def _point_marks(filled: FilledTable, key: tuple[str, str], cell) -> list[str]:
    """The marks of cell ``key`` as the tables print them after its number: ``‡`` trained or
    measured unlike the other cells, ``§`` cut short."""
    return [m for m, on in ((UNEVEN, filled.marked(key)), (SHORTENED, bool(cell.shortened_by()))) if on]


def _marks_said(labels) -> str:
    """The meaning of each mark the ``labels`` carry, ``; ``-joined (empty without one)."""
    return "; ".join(
        said for mark, said in _MARKS_SAID.items() if any(f" {mark}" in label for label in labels)
    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curve(filled: FilledTable, path: Path) -> Path | None:
    """One panel per metric: ours (mean +- std over seeds; a point of one seed has no bar) against the table's ``x`` setting, one
    line per dataset, the paper's values dashed where the paper prints them. None without ``x``."""
    t = filled.table
    if not t.x:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(t.metrics), figsize=(5 * len(t.metrics), 4), squeeze=False)
    said_marks: set[str] = set()
    for ax, (metric, key) in zip(axes[0], t.metrics.items()):
        for column in t.columns:
            xs, means, stds, paper_x, paper_y, seeds = [], [], [], [], [], []
            # (a point of runs cut short, or unlike the other cells: marked as the tables mark it)
            marks: set[str] = set()
            for row in t.rows:
                if row.reported_only or t.x not in row.match:
                    continue
                x = float(row.match[t.x])
                cell = filled.cells[(row.label, column)]
                mean, std, n = cell.stats(key)
                if n:
                    marks |= set(_point_marks(filled, (row.label, column), cell))
                # A value with no finished run is a gap in the line (NaN), not a line drawn across it;
                # one seed has no spread to show: no bar (a bar of zero would say it has none).
                xs.append(x), means.append(mean if n else math.nan)
                stds.append(std if n >= 2 and std is not None else math.nan)
                if n:
                    seeds.append(n)
                value = (row.values.get(column) or {}).get(metric)
                if value is not None:
                    paper_x.append(x), paper_y.append(value)
            if any(not math.isnan(m) for m in means):
                line = ax.errorbar(
                    xs,
                    means,
                    yerr=stds,
                    marker="o",
                    capsize=3,
                    label=f"{column} (ours, {_seeds_said(seeds)})"
                    + "".join(f" {m}" for m in (UNEVEN, SHORTENED) if m in marks),
                )
                said_marks |= marks
                color = line[0].get_color()
            else:
                color = None
            if paper_x:
                ax.plot(paper_x, paper_y, "--", marker="x", color=color, label=f"{column} (paper)")
        ax.set_xlabel(t.x)
        if all(
            float(row.match[t.x]).is_integer() for row in t.rows if not row.reported_only and t.x in row.match
        ):
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # a count of prompts: no 1.25
        ax.set_ylabel(f"{metric} ({t.units})")
        _within_percent(ax, t.units)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no run and no paper value: nothing to name
            ax.legend(fontsize=8)
    # The counts alone (the notes name the folders, which would run off the figure's edges).
    meaning = _marks_said([" " + " ".join(said_marks)])  # (each mark a line of the figure carries)
    said = filled.summary().split("; ")[0] + (f"; {meaning}" if meaning else "")
    fig.suptitle(textwrap.fill(f"{t.name}: {said}", 110), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _seeds_said(seeds: list[int]) -> str:
    """How many seeds each point of a line averages, and what its bars are: ``3 seeds, bars: std``."""
    low, high = min(seeds), max(seeds)
    count = f"{low} seed{'' if high == 1 else 's'}" if low == high else f"{low}-{high} seeds"
    if high < 2:
        return f"{count}, no bar"
    return f"{count}, bars: std" + (" (none for one seed)" if low < 2 else "")


def _apart(fig, ax, labels: list) -> None:
    """Labels of points close together (runs of like numbers and hours: every method near chance
    in a shortened sweep) moved apart until none covers another: those of points in the upper half
    of the plot downwards, the others upwards (towards the plot's middle, not out of it)."""
    renderer = fig.canvas.get_renderer()
    middle = (ax.bbox.y0 + ax.bbox.y1) / 2
    placed = []
    upper = [a for a in labels if ax.transData.transform(a.xy)[1] > middle]
    lower = [a for a in labels if a not in upper]
    for group, down in ((sorted(upper, key=lambda a: -a.get_window_extent(renderer).y1), True),
                        (sorted(lower, key=lambda a: a.get_window_extent(renderer).y0), False)):  # fmt: skip
        for label in group:
            if down:
                x, _ = label.xyann
                label.xyann = (x, -3)
                label.set_va("top")
            for _ in range(len(labels)):
                box = label.get_window_extent(renderer)
                over = [b for b in placed if box.overlaps(b)]
                if not over:
                    break
                # (in points: the boxes are in pixels at the figure's dpi)
                shift = (
                    (box.y1 - min(b.y0 for b in over) + 1) if down else (max(b.y1 for b in over) - box.y0 + 1)
                )
                x, y = label.xyann
                label.xyann = (x, y + (-shift if down else shift) * 72 / fig.dpi)
            placed.append(label.get_window_extent(renderer))


def accuracy_vs_compute(
    filled: FilledTable, path: Path, generation_hours: dict[tuple[str, str], float]
) -> Path | None:
    """The first metric of each row and column against its compute: training hours per run (the
    fits alone, ``fit_seconds``; wall time for a run that predates it, and the axis says so) plus,
    for methods that read edits, the hours generating the edits it reads took where the edit store
    recorded them (``generation_hours`` per (row, column)). Each point is named beside it, or,
    where too many lie too close for that, numbered with its name in a key beneath the plot (and in
    the PNG's Description). A cell with results but no training
    time in some run is left out and named beneath the plot (and in the PNG's Description). None
    when no cell has a point."""
    t = filled.table
    metric, key = next(iter(t.metrics.items()))
    points, left_out = [], []
    wall_time = False
    for (label, column), cell in filled.cells.items():
        mean, _, n = cell.stats(key)
        seconds, fit = cell.training_seconds()
        if n and seconds is None:
            left_out.append(f"{label} ({column})")
        if not n or seconds is None:
            continue
        wall_time = wall_time or not fit
        hours = seconds / 3600
        hours += generation_hours.get((label, column), 0.0)
        # (‡ trained or measured unlike other cells, § cut short: as the tables mark them)
        marks = "".join(f" {m}" for m in _point_marks(filled, (label, column), cell))
        points.append((hours, mean, f"{label} ({column}){marks}"))
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    # A label reads away from the nearer side of the plot: the right half's to the left of their
    # point (written to the right, the rightmost ran past the axes and out of the image).
    xs = [math.log10(max(hours, 1e-12)) for hours, _, _ in points]
    labels = []
    for (hours, mean, label), x in zip(points, xs, strict=True):
        leftward = max(xs) > min(xs) and (x - min(xs)) / (max(xs) - min(xs)) > 0.5
        dot = ax.scatter(hours, mean)
        labels.append(
            ax.annotate(
                label,
                (hours, mean),
                color=dot.get_facecolor()[0],  # (a label set apart from its point still names it)
                fontsize=7,
                xytext=(-3 if leftward else 3, 3),
                textcoords="offset points",
                ha="right" if leftward else "left",
            )
        )
    ax.set_xscale("log")
    ax.margins(x=0.08, y=0.1)
    training = "training (wall time where a run has no fit_seconds)" if wall_time else "training"
    ax.set_xlabel(f"hours per run: {training}" + (" + edit generation" if generation_hours else ""))
    ax.set_ylabel(f"{metric} ({t.units})")
    _within_percent(ax, t.units)
    ax.grid(alpha=0.3)
    meaning = _marks_said([label for _, _, label in points])
    # (the file's name says accuracy; a table of errors, Table 4's, plots its error: said)
    better = ", lower is better" if t.lower_is_better else ""
    ax.set_title(
        f"{t.name}: {metric} against compute{better}" + (f" ({meaning})" if meaning else ""), fontsize=9
    )
    note = f"Left out, a run without a recorded training time: {'; '.join(left_out)}" if left_out else ""
    starts = [(label.xyann, label.get_va()) for label in labels]
    beneath = _beneath(fig, [note])
    _apart(fig, ax, labels)
    points_key = ""
    moved = max(abs(label.xyann[1] - start[1]) for label, (start, _) in zip(labels, starts, strict=True))
    if moved > _FAR or not _inside(fig, labels, beneath):
        # Too many points close together for their names to stand by them (every cell near chance
        # in a shortened sweep): each point numbered, the names in a key beneath the plot.
        points_key = "Points: " + "; ".join(f"{i} {label}" for i, (_, _, label) in enumerate(points, 1))
        if beneath is not None:
            beneath.remove()
        for i, (label, (start, va)) in enumerate(zip(labels, starts, strict=True), 1):
            label.set_text(str(i))
            label.xyann = start
            label.set_va(va)
        _beneath(fig, [points_key, note])
        _apart(fig, ax, labels)
    said = "; ".join(text for text in (points_key, note) if text)
    fig.savefig(path, dpi=120, metadata={"Description": said or "every cell with results is shown"})
    plt.close(fig)
    return path


def _within_percent(ax, units: str) -> None:
    """A percentage's axis kept within 0-100 (its margins ran past 100 for errors near it): a
    value past either end cannot be, so the axis does not show room for one."""
    if "%" not in units:
        return
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 100.0))


#: How far (points) a label may be set apart from its point before the points are numbered instead.
_FAR = 30

#: Characters per line of the text beneath a plot (7 points, an 8-inch figure).
_BENEATH_WIDTH = 140


def _beneath(fig, texts: list[str]):
    """``texts`` (those not empty) written beneath the plot, the figure made taller by their
    lines and laid out above them; returns the text written (None: none)."""
    lines = [line for text in texts if text for line in textwrap.wrap(text, _BENEATH_WIDTH)]
    width, _ = fig.get_size_inches()
    height = 4.5 + 0.13 * len(lines)
    fig.set_size_inches(width, height)
    written = None
    if lines:
        written = fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, va="bottom")
        fig.tight_layout(rect=(0, (0.13 * len(lines) + 0.1) / height, 1, 1))
    else:
        fig.tight_layout()
    return written


def _inside(fig, labels: list, beneath=None) -> bool:
    """Whether every label lies inside the figure, above the text beneath the plot (``beneath``)."""
    renderer = fig.canvas.get_renderer()
    image = fig.bbox
    floor = image.y0 if beneath is None else beneath.get_window_extent(renderer).y1
    boxes = [label.get_window_extent(renderer) for label in labels]
    return all(image.x0 <= b.x0 and b.x1 <= image.x1 and floor <= b.y0 and b.y1 <= image.y1 for b in boxes)
