"""A filled table written out: markdown (for a README), LaTeX booktabs (for a paper), CSV (for
analysis). Every cell shows the paper's number, ours as mean +- std (n) over seeds, and the
difference; the runs of a cell that gave it no number are counted in it (missing, failed, diverged,
finished without a value), and a cell without a number says why."""

from __future__ import annotations

import csv
import io
import re

from .paper import setting
from .table import Cell, FilledTable, measurement_text


def _num(value: float | None, digits: int = 2, dash: str = "–") -> str:
    return dash if value is None else f"{value:.{digits}f}"


def _status(cell: Cell, metric_key: str | None = None) -> str:
    """The cell's runs that give it no number: missing, failed, diverged, and (for ``metric_key``)
    finished without a value for it."""
    if not cell.expected_seeds and not cell.runs:
        return "not in the sweep"
    parts = []
    if cell.missing_seeds:
        parts.append(f"{len(cell.missing_seeds)} missing")
    if cell.failed:
        parts.append(f"{len(cell.failed)} failed")
    if cell.diverged:
        parts.append(f"{len(cell.diverged)} diverged")
    if metric_key is not None and cell.without(metric_key):
        parts.append(f"{len(cell.without(metric_key))} finished without a value")
    return ", ".join(parts)


def ours_text(cell: Cell, metric_key: str, pm: str = "±") -> str:
    mean, std, n = cell.stats(metric_key)
    status = _status(cell, metric_key)
    if n == 0:
        return status or "no value"
    text = f"{mean:.2f} {pm} {_num(std)} ({n})"
    return f"{text}; {status}" if status else text


def _tex_ours(cell: Cell, metric_key: str) -> str:
    """Ours in LaTeX: ``$mean \\pm std$ (n)`` (``$mean$ (1)`` for one seed), and the runs without a
    number counted as in markdown (``-- (3 missing)``)."""
    mean, std, n = cell.stats(metric_key)
    status = _tex(_status(cell, metric_key))
    if n == 0:
        return f"-- ({status})" if status else "--"
    number = f"${mean:.2f}$" if std is None else f"${mean:.2f} \\pm {std:.2f}$"
    return f"{number} ({n}{'; ' + status if status else ''})"


def _training_time(cell: Cell) -> tuple[float | None, str]:
    """Mean training minutes per finished run, and ``†`` where wall time stands in for it."""
    seconds, fit = cell.training_seconds()
    return (None if seconds is None else seconds / 60), ("" if fit else "†")


def _minutes_text(minutes: float) -> str:
    """Minutes to one decimal, under one minute to two significant digits (a short run is not 0.0)."""
    # (0.995 and up round to one minute: "1.0", as its neighbours over a minute are written)
    return f"{minutes:.1f}" if minutes >= 0.995 else f"{minutes:.2g}"


def diff_value(paper: float | None, cell: Cell, metric_key: str) -> float | None:
    mean, _, n = cell.stats(metric_key)
    return None if paper is None or n == 0 else mean - paper


def _columns(filled: FilledTable) -> list[tuple[str, str, str]]:
    """(dataset column, paper metric, metrics.json key) in the paper's order."""
    t = filled.table
    return [(c, m, key) for c in t.columns for m, key in t.metrics.items()]


def _paper_value(row, column: str, metric: str) -> float | None:
    return (row.values.get(column) or {}).get(metric)


#: The mark of a cell trained or measured unlike other cells of its table (``FilledTable.marked``).
UNEVEN = "‡"
#: The mark of a cell whose runs were cut short of their epochs or splits (``Cell.shortened_by``).
SHORTENED = "§"


def _marks(filled: FilledTable, cell: Cell) -> str:
    """The marks after a cell's number in markdown: ``‡`` uneven, ``§`` cut short."""
    marks = [UNEVEN] if filled.marked((cell.row.label, cell.column)) else []
    if cell.shortened_by():
        marks.append(SHORTENED)
    return "".join(f" {m}" for m in marks)


def notes(filled: FilledTable) -> list[str]:
    t = filled.table
    lines = [filled.summary(), *filled.hints]
    if t.lower_is_better and not t.own:  # Δ is always ours minus the paper's
        lines.append(
            f"Lower is better in this table ({', '.join(t.metrics)}): a positive Δ (ours minus the paper's) "
            "is worse than the paper's number"
        )
    lines += filled.stopped()
    lines += filled.replaced()
    lines += filled.attempts()
    lines += filled.validation()
    lines += filled.data_differs()
    lines += filled.release_differs()
    lines += filled.code()
    lines += filled.without_values()
    lines += filled.unshown_attacks()
    lines += filled.skipped_images()
    lines += filled.blew_up()
    lines += filled.shortened()
    if any(c.shortened_by() for c in filled.cells.values()):
        lines.append(
            f"{SHORTENED} marks the cells whose runs were cut short of their epochs or splits (metrics.json's "
            "shortened_by: fewer batches, steps or a time limit): "
            + (
                "their number is a shortened run's"
                if t.own
                else "their number, and its Δ, are a shortened run's, not one of the paper's protocol"
            )
        )
    if filled.uneven():
        # What every cell with runs shares is said once (the settings line below names it too); per
        # cell, what sets it apart.
        shared = filled.shared_deviations()
        lines.append(
            f"{UNEVEN} marks the cells whose runs differ from the experiment file where other cells do not "
            "differ alike (trained or measured unlike their neighbours): compare them with care. "
            + (f"Every cell with runs: {', '.join(sorted(shared))}. " if shared else "")
            + "Per cell"
            + (" besides" if shared else "")
            + ": "
            + "; ".join(
                f"{label} ({column}): {', '.join(f for f in found if f not in shared)}"
                for (label, column), found in sorted(filled.cell_deviations.items())
                if filled.marked((label, column))
            )
            + (
                "; the other cells with runs: nothing more"
                if any(c.runs and not filled.marked(k) for k, c in filled.cells.items())
                else ""
            )
        )
    finished = [r for cell in filled.cells.values() for r in cell.finished]
    if t.own:
        return lines + _own_notes(filled)
    if finished:
        protocols = sorted({str(setting(r.config, "protocol")) for r in finished})
        lines.append(
            f"Recipe of the finished runs: protocol {', '.join(protocols)} (conf/protocol/: model, optimiser, "
            "schedule, epochs and loss) as the experiment file sets it (its notes name where it departs "
            "from the protocol), with the settings named below where the runs differ from that file"
        )
    if filled.deviations:
        lines.append("Settings that differ from the experiment file: " + "; ".join(filled.deviations))
    elif finished:
        lines.append("Every run used the experiment file's settings (its protocol, epochs and loss).")
    else:
        lines.append("No finished run of this table was found, so no number above is ours.")
    lines += [f"Robustness: {line}" for line in filled.measurements]
    for row in t.rows:
        if row.uncertain:
            lines.append(f"{row.label}: the paper's number is uncertain: {row.uncertain}")
        if row.note:
            lines.append(f"{row.label}: {row.note}")
    # What the experiment file declares of its own recipe: a choice the paper leaves open, or where
    # it departs from the paper's text or a baseline's reference.
    lines += [f"Experiment file: {note}" for note in t.notes]
    return lines


def _own_notes(filled: FilledTable) -> list[str]:
    """The notes of a table of one's own runs, after those every table has: what its rows are, what
    every run was given and trained with; no experiment file to compare with."""
    from .own import recipe, top_k

    t = filled.table
    lines = [
        "The runs' own table, beside no experiment file's settings and no paper numbers: a row for each "
        "combination of the settings the runs were given that differ between them, the seed aside"
    ]
    lines += t.notes  # what every run was given
    said = recipe(filled)
    lines.append(said or "No finished run was found, so no number above is ours.")
    lines += [k for k in [top_k(filled)] if k]
    lines += [f"Robustness: {line}" for line in filled.measurements]
    return lines


def markdown(filled: FilledTable) -> str:
    t = filled.table
    cols = _columns(filled)
    first = "Settings" if t.own else "Method"
    if t.own:  # no paper numbers: ours alone
        header = [first] + [f"{c} {m}" for c, m, _ in cols]
        out = [f"### {t.name}: {t.caption}", "", f"Units: {t.units}. Mean ± std (seeds).", ""]
    else:
        header = [first] + [f"{c} {m}: {part}" for c, m, _ in cols for part in ("paper", "ours", "Δ")]
        out = [f"### {t.name}: {t.caption}", "", f"Units: {t.units}. Ours: mean ± std (seeds).", ""]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    for row in t.rows:
        cells = []
        for column, metric, key in cols:
            paper = _paper_value(row, column, metric)
            if row.reported_only:
                cells += [_num(paper), "not run (reported only)", "–"]
                continue
            cell = filled.cells[(row.label, column)]
            diff = diff_value(paper, cell, key)
            ours = ours_text(cell, key) + _marks(filled, cell)
            cells += [ours] if t.own else [_num(paper), ours, "–" if diff is None else f"{diff:+.2f}"]
        out.append("| " + " | ".join([row.label] + cells) + " |")
    out += [
        "",
        "Compute per run (mean over finished seeds): optimiser steps / images seen / training minutes "
        "(the fits alone, metrics.json's fit_seconds).",
        "",
    ]
    out.append(f"| {first} | " + " | ".join(t.columns) + " |")
    out.append("|---|" + "---|" * len(t.columns))
    wall_time = False
    for row in t.rows:
        if row.reported_only:
            continue
        parts = []
        for column in t.columns:
            cell = filled.cells[(row.label, column)]
            steps, seen = cell.mean_of("optimizer_steps"), cell.mean_of("images_seen")
            minutes, mark = _training_time(cell)
            wall_time = wall_time or bool(mark and minutes is not None)
            shown = "–" if minutes is None else f"{_minutes_text(minutes)}{mark}"
            seen_text = "–" if seen is None else f"{seen:.0f}"  # a run that predates images_seen
            parts.append("–" if steps is None else f"{steps:.0f} / {seen_text} / {shown}")
        out.append("| " + " | ".join([row.label] + parts) + " |")
    if wall_time:
        out += [
            "",
            "† wall time (start-up, evaluation and attacks included): a run without fit_seconds in its "
            "metrics.json (written before it was recorded) counts its wall time.",
        ]
    out.append("")
    out += [f"- {line}" for line in notes(filled)]
    return "\n".join(out) + "\n"


#: LaTeX's special characters in text, each as it prints (one pass: no escape is escaped again).
_TEX = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "_": "\\_",
    "#": "\\#",
    "$": "\\$",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
    "^": "\\textasciicircum{}",
}


def _tex(text: str) -> str:
    return re.sub(r"[\\&%_#${}~^]", lambda m: _TEX[m.group()], text)


def latex(filled: FilledTable) -> str:
    t = filled.table
    if t.own:
        return _own_latex(filled)
    cols = _columns(filled)
    spec = "l" + "rrr" * len(cols)
    # The report's notes as comments (runs counted, failures, settings), so the file says them too.
    out = [
        "% booktabs table written by report.py; " + _tex(filled.summary()),
        *[f"% {_tex(' '.join(line.split()))}" for line in notes(filled)[1:]],
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & " + " & ".join(f"\\multicolumn{{3}}{{c}}{{{_tex(c)} {_tex(m)}}}" for c, m, _ in cols) + " \\\\",
        " ".join(f"\\cmidrule(lr){{{2 + 3 * i}-{4 + 3 * i}}}" for i in range(len(cols))),
        "Method & " + " & ".join("Paper & Ours & $\\Delta$" for _ in cols) + " \\\\",
        "\\midrule",
    ]
    for row in t.rows:
        cells = []
        for column, metric, key in cols:
            paper = _paper_value(row, column, metric)
            if row.reported_only:
                cells += [_num(paper, dash="--"), "--", "--"]
                continue
            cell = filled.cells[(row.label, column)]
            diff = diff_value(paper, cell, key)
            mark = "$^\\ddagger$" if filled.marked((row.label, column)) else ""
            mark += "$^\\S$" if cell.shortened_by() else ""
            cells += [
                _num(paper, dash="--"),
                _tex_ours(cell, key) + mark,
                "--" if diff is None else f"${diff:+.2f}$",
            ]
        out.append(_tex(row.label) + " & " + " & ".join(cells) + " \\\\")
    # What sets our numbers apart from the experiment file's recipe belongs in the caption itself.
    settings = ""
    if filled.deviations:
        settings = (
            " Settings that differ from the experiment file: " + _tex("; ".join(filled.deviations)) + "."
        )
    if filled.uneven():
        settings += " $^\\ddagger$: trained or measured unlike the other cells (report.md lists them)."
    if any(c.shortened_by() for c in filled.cells.values()):
        settings += " $^\\S$: runs cut short of their epochs or splits, not the paper's protocol."
    out += [
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{_tex(t.caption)} Ours: mean $\\pm$ std (seeds).{settings}}}",
        "\\end{table}",
    ]
    return "\n".join(out) + "\n"


def _own_latex(filled: FilledTable) -> str:
    """A table of one's own runs in LaTeX: one column per dataset and metric, ours alone."""
    t = filled.table
    cols = _columns(filled)
    out = [
        "% booktabs table written by report.py; " + _tex(filled.summary()),
        *[f"% {_tex(' '.join(line.split()))}" for line in notes(filled)[1:]],
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\begin{{tabular}}{{l{'r' * len(cols)}}}",
        "\\toprule",
        "Settings & " + " & ".join(f"{_tex(c)} {_tex(m)}" for c, m, _ in cols) + " \\\\",
        "\\midrule",
    ]
    for row in t.rows:
        cells = []
        for column, _, key in cols:
            cell = filled.cells[(row.label, column)]
            cells.append(_tex_ours(cell, key) + ("$^\\S$" if cell.shortened_by() else ""))
        out.append(_tex(row.label) + " & " + " & ".join(cells) + " \\\\")
    shortened = (
        " $^\\S$: runs cut short of their epochs or splits."
        if any(c.shortened_by() for c in filled.cells.values())
        else ""
    )
    out += [
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{_tex(t.caption)} Mean $\\pm$ std (seeds).{shortened}}}",
        "\\end{table}",
    ]
    return "\n".join(out) + "\n"


CSV_FIELDS = (
    "table", "row", "column", "metric", "metrics_key", "paper", "mean", "std", "n", "diff",
    "expected", "missing", "failed", "diverged", "no_value", "unexpected", "measured_with",
    "settings_differ", "shortened_by", "optimizer_steps", "images_seen", "fit_seconds", "wall_time_s", "reported_only", "run_folders",
)  # fmt: skip


def _rounded(value, digits: int):
    return round(value, digits) if isinstance(value, float) else value


def csv_text(filled: FilledTable) -> str:
    t = filled.table
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in t.rows:
        for column, metric, key in _columns(filled):
            paper = _paper_value(row, column, metric)
            rec = {"table": t.name, "row": row.label, "column": column, "metric": metric, "metrics_key": key,
                   "paper": paper, "reported_only": row.reported_only}  # fmt: skip
            if not row.reported_only:
                cell = filled.cells[(row.label, column)]
                mean, std, n = cell.stats(key)
                measurement = cell.measurement(key)
                rec.update(
                    # metrics.json holds percentages to 4 decimals: no float noise beyond them.
                    mean=_rounded(mean, 4),
                    std=_rounded(std, 4),
                    n=n,
                    diff=_rounded(diff_value(paper, cell, key), 4),
                    expected=len(cell.expected_seeds),
                    missing=len(cell.missing_seeds),
                    failed=len(cell.failed),
                    diverged=len(cell.diverged),
                    no_value=len(cell.without(key)),
                    unexpected=len(cell.unexpected),
                    measured_with=None if measurement is None else measurement_text(measurement),
                    # The cell's settings and measurements that differ from the experiment file.
                    settings_differ="; ".join(filled.cell_deviations.get((row.label, column), [])),
                    # What cut the cell's runs short (metrics.json's shortened_by), each once.
                    shortened_by="; ".join(cell.shortened_by()),
                    optimizer_steps=_rounded(cell.mean_of("optimizer_steps"), 2),
                    images_seen=_rounded(cell.mean_of("images_seen"), 2),
                    fit_seconds=_rounded(cell.mean_of("fit_seconds"), 2),
                    wall_time_s=_rounded(cell.mean_of("wall_time_s"), 2),
                    run_folders=";".join(str(r.folder) for r in cell.runs),
                )
            writer.writerow(rec)
    return buf.getvalue()
