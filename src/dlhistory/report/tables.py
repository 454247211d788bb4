"""Results as tables: aligned text for the terminal, Markdown for files."""

from __future__ import annotations

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


def verdict_word(holds: bool | None) -> str:
    return {True: "holds", False: "FAILS", None: "skipped"}[holds]


def comparison_markdown(comparison) -> str:
    """The Markdown summary of one comparison, with the command that reproduces it."""
    m, v = comparison.milestone, comparison.verdict
    seeds = len(comparison.seeds)
    command = " ".join(["dlhistory compare", m.key, *comparison.overrides, "--preset", comparison.preset,
                        "--seeds", str(seeds)])
    return "\n".join([
        f"# {m.year} {m.title}: {m.showed}", "",
        f"{m.citation} <{m.url}>", "",
        f"Claim ({comparison.preset} preset, {seeds} seeds): {m.claim.statement}.", "",
        markdown_table(comparison.headers(), comparison.rows()),
        *([markdown_table(*v.table)] if v and v.table else []),
        f"Paper: {m.claim.paper}.", "",
        f"**Verdict: the claim {verdict_word(v.holds if v else None)}** ({v.reason if v else ''}).", "",
        f"Wall time {comparison.seconds:.0f} s. Produced by `{command}`.", "",
    ])


def review_rows(entries) -> list[list[str]]:
    """One row per milestone: year, title, changes, the claim metric per variant, verdict."""
    from ..comparison import format_mean_std

    rows = []
    for e in entries:
        m = e.milestone
        if e.comparison is None:
            rows.append([str(m.year), m.title, ", ".join(m.changes), "-", "skipped", e.skipped or ""])
            continue
        c = e.comparison
        if len(c.results) > MAX_REVIEW_POINTS:  # a grid: its own table, in the summary, says it better
            values = f"{len(c.results)} points; see the {m.key} table"
        else:
            values = "; ".join(f"{p}: {format_mean_std(*c.summary(m.claim.metric, p), m.claim.metric)}"
                               for p in c.results)
        rows.append([str(m.year), m.title, ", ".join(m.changes), values,
                     verdict_word(c.verdict.holds), c.verdict.reason])
    return rows


MAX_REVIEW_POINTS = 8
REVIEW_HEADERS = ["year", "milestone", "changed", "claim metric (mean ± std over seeds)", "claim", "why"]


def review_markdown(entries, preset: str, seeds: int | None, seconds: float) -> str:
    command = f"dlhistory review --preset {preset}" + (f" --seeds {seeds}" if seeds else "")
    parts = [f"# dlhistory review ({preset} preset)", "",
             f"Produced by `{command}` in {seconds / 60:.1f} minutes.", "",
             markdown_table(REVIEW_HEADERS, review_rows(entries))]
    for e in entries:
        if e.comparison is not None:
            parts.append(comparison_markdown(e.comparison).replace("# ", "## ", 1))
    return "\n".join(parts)
