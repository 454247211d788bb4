"""Results as tables: aligned text for the terminal, Markdown for files."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([fmt(headers), line, *(fmt(r) for r in rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def fmt(row: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"

    return "\n".join([fmt(headers), "|" + "---|" * len(headers), *(fmt(r) for r in rows)]) + "\n"


def comparison_markdown(comparison) -> str:
    """The Markdown summary of one comparison, with the command that reproduces it."""
    m, v = comparison.milestone, comparison.verdict
    seeds = len(comparison.seeds)
    return "\n".join([
        f"# {m.year} {m.title}: {m.showed}", "",
        f"{m.citation} <{m.url}>", "",
        f"Claim ({comparison.preset} preset, {seeds} seeds; stated over {m.claim.seeds}): "
        f"{m.claim.statement}.", "",
        markdown_table(comparison.headers(), comparison.rows()),
        *([markdown_table(*v.table)] if v and v.table else []),
        f"Paper: {m.claim.paper}.", "",
        f"**Verdict: {v.outcome if v else 'none'}** ({v.reason if v else ''}).", "",
        f"Wall time {comparison.seconds:.0f} s. Produced by `{comparison.command}`.", "",
    ])


def comparison_text(comparison) -> str:
    """The comparison as the terminal shows it: the table, the judge's table, the paper and the verdict."""
    m, v = comparison.milestone, comparison.verdict
    parts = [f"{m.year} {m.title} ({comparison.preset}, seeds {comparison.seeds}): {m.claim.statement}",
             format_table(comparison.headers(), comparison.rows())]
    if v.table:
        parts += ["", format_table(*v.table)]
    parts += [f"paper: {m.claim.paper}", f"claim {v.outcome}: {v.reason}"]
    figures = ", ".join(str(p) for k, p in comparison.paths.items() if k.startswith("figure"))
    if comparison.paths:
        parts.append(f"wall time {comparison.seconds:.0f} s; summary {comparison.paths['md']}; "
                     f"figures {figures}")
    return "\n".join(parts)


def review_rows(review, short: bool = False) -> list[list[str]]:
    """One row per milestone: year, title, changes, the claim metric per variant, verdict, why (with
    ``short``, the why in one short line: the long fix is on the page and in summary.md)."""
    from .page import short_reason

    rows = []
    for e in review.entries:
        m, v = e.milestone, e.verdict
        if e.comparison is None:
            reason = short_reason(v.reason)[0] if short else v.reason
            rows.append([str(m.year), m.title, ", ".join(m.changes), "-", v.outcome, reason, "-", "-"])
            continue
        c = e.comparison
        column = next(col for col in c.columns() if col.key == m.claim.metric)
        if len(c.results) > MAX_REVIEW_POINTS:  # a grid: its own table, in the summary, says it better
            values = f"{len(c.results)} points; see the {m.key} table"
        else:
            values = "; ".join(f"{p}: {column.format(*c.summary(column.key, p), len(runs))}"
                               for p, runs in c.results.items())
        if short:
            values, reason = _first_clause(values), _first_clause(_deciding(v.reason))
        else:
            reason = v.reason
        rows.append([str(m.year), m.title, ", ".join(m.changes), values, v.outcome, reason, *cost(c)])
    return rows


def finished_runs(comparison) -> list[dict]:
    """The results of the comparison's runs that have a run directory (not a reused summary's gap)."""
    return [r for rs in comparison.results.values() for r in rs if r.get("run_dir")]


def run_seconds(comparison) -> float:
    """The wall time of the comparison's runs, summed (runs made side by side count each)."""
    return sum(r.get("wall_seconds") or 0 for r in finished_runs(comparison))


def cost(comparison) -> tuple[str, str]:
    """(the wall time of the comparison's runs, their mean utilisation of this machine's matmul peak)."""
    from .machine import utilisation

    shares = [u for u in map(utilisation, finished_runs(comparison)) if u is not None]
    return duration(run_seconds(comparison)), f"{statistics.mean(shares):.0%}" if shares else "-"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _deciding(reason: str) -> str:
    """The clause that decided a verdict first: the first one that says NO, else the whole reason."""
    return next((c for c in reason.split("; ") if c.endswith(" NO") or " NO " in c), reason)


def _first_clause(reason: str, limit: int = 70) -> str:
    """A verdict's reason cut for the terminal: its first clause, at most ``limit`` characters."""
    first = reason.split("; ")[0]
    return first if len(first) <= limit else first[:limit - 1] + "…"


MAX_REVIEW_POINTS = 8
REVIEW_HEADERS = ["year", "milestone", "changed", "claim metric (mean ± std over seeds)", "claim", "why",
                  "time (runs)", "MFU"]


def review_markdown(review) -> str:
    parts = [f"# dlhistory review ({review.preset} preset)", "",
             f"Produced by `{review.command}` in {review.seconds / 60:.1f} minutes.", "",
             markdown_table(REVIEW_HEADERS, review_rows(review))]
    for e in review.entries:
        if e.comparison is not None:
            parts.append(comparison_markdown(e.comparison).replace("# ", "## ", 1))
    return "\n".join(parts)


def review_text(review) -> str:
    seeds = review.seeds or "each claim's"
    minutes = review.seconds / 60
    return "\n".join([f"dlhistory review ({review.preset} preset, {seeds} seeds, {minutes:.1f} min)",
                      format_table(REVIEW_HEADERS, review_rows(review, short=True)),
                      f"page: {review.paths.get('html')}",
                      f"summary: {review.paths.get('md')} and {review.paths.get('json')}"])


def timeline_text(milestones) -> str:
    rows = [[str(m.year), m.key, m.title, ", ".join(m.changes), m.showed] for m in milestones]
    return format_table(["year", "key", "milestone", "changed", "what it showed"], rows)


def milestone_text(m, preset: str, variant: str | None, overrides: tuple[str, ...]) -> str:
    """A milestone's history, the four components of a recipe with every config value, what each
    baseline swaps, and the claim."""
    from ..config import apply_overrides, flat_items
    from ..spec import KINDS

    recipe = apply_overrides(m.recipe(preset, variant), overrides)
    lines = [f"{m.year} {m.title} ({m.key}): {m.showed}", f"  {m.citation}", f"  {m.url}", "",
             f"recipe: {variant or m.variant} @ {preset}"]
    for kind in KINDS:
        component = getattr(recipe, kind)
        lines.append(f"  {kind:<9} {component.name}")
        lines += [f"      {kind}.{key} = {value!r}" for key, value in flat_items(component.config)]
    lines += ["", f"changes vs the baselines: {', '.join(m.changes)}"]
    ours = m.recipe(preset)
    for baseline in m.baselines:
        other = m.recipe(preset, baseline)
        lines.append(f"  baseline {baseline}:")
        lines += [f"    {kind:<9} {getattr(ours, kind).name} -> {getattr(other, kind).name}"
                  for kind in other.differs_from(ours)]
    lines += ["", f"claim ({m.claim.seeds} seeds): {m.claim.statement}"]
    if m.claim.thresholds:
        sign = ">=" if m.claim.direction == "max" else "<="
        lines.append("  thresholds: " + ", ".join(f"{p} {m.claim.metric} {sign} {t}"
                                                 for p, t in m.claim.thresholds.items()))
    lines.append(f"  paper: {m.claim.paper}")
    if m.tools:
        lines.append(f"\ntools: {', '.join(t.name for t in m.tools)}")
    return "\n".join(lines)


def result_text(result: dict) -> str:
    """One run's final metrics, what it cost, and where it is."""
    keys = [k for k in result if k.startswith(("train_", "val_", "test_")) and k != "train_flops"]
    keys += ["steps", "train_flops", "flops_per_s", "samples_per_s", "parameters", "precision", "device"]
    rows = [[k, _value(result.get(k))] for k in keys if k in result]
    return format_table(["metric", "value"], rows) + f"\nrun directory: {result['run_dir']}"


def sweep_text(sweep) -> str:
    headers = list(sweep.rows[0])
    table = format_table(headers, [[_value(r[h]) for h in headers] for r in sweep.rows])
    return f"{table}\nresults: {sweep.paths['csv']}; figure: {sweep.paths['figure']}"


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e6 else f"{value:.4f}"
    return str(value)
