"""The review as one page: ``index.html`` beside ``summary.md``, the lecture's timeline told with the
project's own measurements.

The page is one self-contained file: figures are PNG data URIs, the seed dots are inline SVG, nothing
is fetched, and it needs no JavaScript. It prints (``@media print``) and follows the reader's dark mode
(``prefers-color-scheme``). A strip of the verdicts comes first, then the lecture's lens (the four key
components, and the loss as a proxy shown with the runs' own numbers: :mod:`.proxy`), then one section
per milestone in timeline order. The review rewrites it after every milestone, so a reader
watching a long review sees results as they come.
"""

from __future__ import annotations

import base64
import html
import math
import platform
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from ..records import atomic_write_text, cpu_model
from ..spec import KINDS
from . import i18n, proxy, tables
from .style import STYLE

MAX_DOTS_POINTS = 8
"""A comparison with more points (a grid) shows its table, not one row of dots per point."""


def write_page(review, out_dir: Path, lang: str = "en", pending=()) -> Path:
    """Write ``index.html`` into ``out_dir`` (atomically) for ``review``; ``pending`` are the
    milestones still to come."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    atomic_write_text(path, render(review, out_dir, lang, pending))
    return path


def render(review, out_dir: Path, lang: str = "en", pending=()) -> str:
    words = i18n.labels(lang)
    entries = [*review.entries, *(_Pending(m) for m in pending)]
    comparisons = [e.comparison for e in review.entries if e.comparison is not None]
    body = [_header(review, entries, words), _lens(comparisons, out_dir, words, lang),
            *(_section(e, review, out_dir, words, lang) for e in entries), _footer(review, words)]
    return (f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            f'img-src data:; style-src \'unsafe-inline\'">\n'
            f"<title>dlhistory: {_e(words['title'])} ({_e(review.preset)})</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


class _Pending:
    """A milestone the review has not reached yet."""

    def __init__(self, milestone) -> None:
        self.milestone, self.comparison, self.skipped = milestone, None, None


def _outcome(entry) -> tuple[str, str]:
    """(outcome, reason) of an entry: a verdict, skipped, or pending."""
    if isinstance(entry, _Pending):
        return "pending", ""
    v = entry.verdict
    return v.outcome, v.reason


# --------------------------------------------------------------------------------------------------
# The top: title, the ten verdicts, the lens


def _header(review, entries, words) -> str:
    cells = []
    for e in entries:
        outcome, _ = _outcome(e)
        m = e.milestone
        cells.append(f'<a class="cell {_css(outcome)}" href="#{m.key}"><span class="year">{m.year}</span>'
                     f'<span class="name">{_e(m.title)}</span>'
                     f'<span class="badge {_css(outcome)}">{_e(words.get(outcome, outcome))}</span></a>')
    counts = Counter(_outcome(e)[0] for e in entries)
    tally = " · ".join(f"{n} {_e(words.get(o, o))}" for o, n in counts.items())
    compute = sum(tables.run_seconds(e.comparison) for e in entries if e.comparison is not None)
    return (f"<header>\n<h1>{_e(words['title'])}</h1>\n<p class=\"sub\">{_e(words['subtitle'])}: "
            f"<code>{_e(review.command)}</code></p>\n"
            f"<h2 id=\"summary\">{_e(words['summary'])}</h2>\n<nav class=\"strip\">{''.join(cells)}</nav>\n"
            f"<p class=\"tally\">{len(entries)} {_e(words['milestones'])}: {tally}. {_e(words['compute'])} "
            f"{tables.duration(compute)}; {_e(words['review_wall'])} {tables.duration(review.seconds)}.</p>\n"
            f"</header>")


def _lens(comparisons, out_dir: Path, words, lang: str) -> str:
    cards = "".join(f'<div class="card"><h4>{_e(words[k])}</h4><p>{_e(words[k + "_means"])}</p></div>'
                    for k in KINDS)
    found = proxy.lenses(comparisons, out_dir)
    items = ""
    for lens in found:
        title, text = i18n.lens_text(lens, lang)
        items += (f"<li><b>{_e(title)}.</b> {_e(text)}" + (_img(lens.figure, title) if lens.figure else "")
                  + "</li>")
    shown = f"<ul class=\"lenses\">{items}</ul>" if found else f"<p>{_e(words['no_proxy'])}</p>"
    return (f"<section id=\"lens\">\n<h2>{_e(words['components'])}</h2>\n"
            f"<p>{_e(words['components_intro'])}</p>\n<div class=\"cards\">{cards}</div>\n"
            f"<h3>{_e(words['proxy'])}</h3>\n<p>{_e(words['proxy_intro'])}</p>\n{shown}\n</section>")


# --------------------------------------------------------------------------------------------------
# One milestone


def _section(entry, review, out_dir: Path, words, lang: str) -> str:
    m, c = entry.milestone, entry.comparison
    outcome, reason = _outcome(entry)
    parts = [f'<section class="milestone" id="{m.key}">',
             f'<h2><span class="year">{m.year}</span> {_e(m.title)} '
             f'<span class="badge {_css(outcome)}">{_e(words.get(outcome, outcome))}</span></h2>',
             f'<p class="cite"><a href="{_e(m.url)}">{_e(m.citation)}</a></p>',
             f'<blockquote>{_e(i18n.lecture(m, lang))}</blockquote>',
             _components(m, review.preset, words),
             _claim(m, c, review.preset, outcome, reason, words)]
    if c is not None:
        parts += [_results(c, words), _figures(c, words), _sample(c, out_dir, words),
                  _cost(c, words), _provenance(c, words)]
    elif outcome == "skipped":
        short, fix = short_reason(reason)
        parts.append(f"<p class=\"fix\"><b>{_e(words['fix'])}:</b> {_e(short)}<br><code>{_e(fix)}</code></p>")
    else:
        parts.append(f"<p class=\"muted\">{_e(words['pending_reason'])}</p>")
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _components(m, preset: str, words) -> str:
    """The recipe's four components; the ones this milestone changed marked, with the baseline's."""
    ours = m.recipe(preset)
    baseline = next(iter(m.baselines), None)
    theirs = m.recipe(preset, baseline) if baseline else None
    cards = []
    for kind in KINDS:
        component = getattr(ours, kind)
        changed = kind in m.changes
        was = ""
        if changed and theirs is not None and getattr(theirs, kind).name != component.name:
            was = (f"<p class=\"was\">{_e(words['baseline'])} ({_e(baseline)}): "
                   f"{_e(getattr(theirs, kind).name)}</p>")
        mark = f' <span class="tag">{_e(words["changed"])}</span>' if changed else ""
        cards.append(f'<div class="card{" changed" if changed else ""}"><h4>{_e(words[kind])}{mark}</h4>'
                     f"<p><code>{_e(component.name)}</code></p>"
                     f"<p class=\"doc\">{_e(_describe(component))}</p>{was}</div>")
    return f'<div class="cards">{"".join(cards)}</div>'


def _claim(m, c, preset: str, outcome: str, reason: str, words) -> str:
    threshold = m.claim.thresholds.get(preset)
    limit = ""
    if threshold is not None:
        column = next(x for x in m.claim.columns if x.key == m.claim.metric)
        sign = ">=" if m.claim.direction == "max" else "<="
        limit = (f"<li>{_e(words['threshold'])} ({_e(preset)}): {_e(m.claim.metric)} {sign} "
                 f"{_e(column.value(threshold))}</li>")
    why = ""
    if outcome != "pending":
        said = _shorten(reason) if outcome == "skipped" else reason
        why = (f"<li><b>{_e(words['verdict'])}:</b> <span class=\"badge {_css(outcome)}\">"
               f"{_e(words.get(outcome, outcome))}</span> {_e(said)}</li>")
    return (f"<h3>{_e(words['claim'])}</h3><ul class=\"claim\"><li>{_e(m.claim.statement)} "
            f"({m.claim.seeds} {_e(words['seeds'])})</li><li><b>{_e(words['paper'])}:</b> "
            f"{_e(m.claim.paper)}</li>{limit}{why}</ul>")


def _results(c, words) -> str:
    parts = [f"<h3>{_e(words['ours'])}</h3>"]
    if len(c.results) <= MAX_DOTS_POINTS:
        parts.append(seed_dots(c, words))
    parts.append(_table(c.headers(), c.rows()))
    if c.verdict is not None and c.verdict.table:
        parts.append(_table(*c.verdict.table))
    return "\n".join(parts)


def seed_dots(c, words) -> str:
    """An inline SVG: per point, one dot per seed of the claim's metric and a bar at the mean, with the
    threshold as a dashed line."""
    claim = c.milestone.claim
    column = next(x for x in claim.columns if x.key == claim.metric)
    scale = 100 if column.percent else 1
    rows = [(p, [scale * r[claim.metric] for r in runs if _finite(r.get(claim.metric))])
            for p, runs in c.results.items()]
    values = [v for _, vs in rows for v in vs]
    threshold = c.milestone.claim.thresholds.get(c.preset)
    if threshold is not None:
        values.append(scale * threshold)
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    low, high = low - 0.05 * span, high + 0.05 * span
    left, width, row = 150, 420, 22
    top = 14

    def x(v: float) -> float:
        return left + width * (v - low) / (high - low)

    shapes = []  # rows of dots; the threshold's label on top, the axis's ends below
    for i, (point, vs) in enumerate(rows):
        y = top + 8 + i * row
        shapes.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{_e(point[:22])}</text>')
        shapes += [f'<circle cx="{x(v):.1f}" cy="{y}" r="4" class="dot"><title>{v:.4g}</title></circle>'
                   for v in vs]
        if vs:
            mean = statistics.mean(vs)
            shapes.append(f'<line x1="{x(mean):.1f}" x2="{x(mean):.1f}" y1="{y - 8}" y2="{y + 8}" '
                          'class="mean"/>')
    height = top + 8 + len(rows) * row
    if threshold is not None:
        t = x(scale * threshold)
        shapes.append(f'<line x1="{t:.1f}" x2="{t:.1f}" y1="8" y2="{height - 6}" class="threshold"/>'
                      f'<text x="{t + 3:.1f}" y="9" class="small">{_e(words["threshold"])}</text>')
    axis = (f'<text x="{left}" y="{height + 10}" class="small">{low:.4g}</text>'
            f'<text x="{left + width}" y="{height + 10}" class="small" text-anchor="end">{high:.4g}</text>')
    label = f"{column.header}{' (%)' if column.percent else ''}: {words['per_seed']}"
    return (f'<figure class="dots"><svg viewBox="0 0 {left + width + 20} {height + 14}" role="img" '
            f'aria-label="{_e(label)}">{"".join(shapes)}{axis}</svg><figcaption>{_e(label)}</figcaption></figure>')


def _figures(c, words) -> str:
    paths = [p for k, p in sorted(c.paths.items()) if k.startswith("figure") and Path(p).is_file()]
    if not paths:
        return ""
    return f"<h3>{_e(words['figures'])}</h3>" + "".join(_img(p, Path(p).stem) for p in paths)


def _sample(c, out_dir: Path, words) -> str:
    """What the milestone's tools show of its first finished run: a picture or a few lines of text.
    A tool that cannot show one says why, and the page goes on."""
    m = c.milestone
    run = next((r for r in c.results.get(m.variant, []) if r.get("run_dir")), None)
    if run is None:
        return ""
    shown = []
    for tool in m.tools:
        if tool.sample is None:
            continue
        made = _made_sample(tool, m, Path(run["run_dir"]), out_dir / m.key)
        if isinstance(made, Exception):  # a sample is an illustration: never lose the page for one
            shown.append(f"<p class=\"muted\">{_e(tool.name)}: {_e(' '.join(str(made).split())[:200])}</p>")
            continue
        if isinstance(made, Path):
            shown.append(_img(made, f"{tool.name} sample"))
        else:
            shown.append(f"<pre class=\"sample\">{_e(made)}</pre>")
        shown.append(f"<p class=\"small\"><code>dlhistory {_e(tool.name)} {_e(m.key)}</code></p>")
    return f"<h3>{_e(words['sample'])}</h3>" + "".join(shown) if shown else ""


_SAMPLES: dict[tuple[str, str], Path | str | Exception] = {}
"""Samples made in this process: the page is rewritten after every milestone, its samples made once."""


def _made_sample(tool, milestone, run_dir: Path, out_dir: Path) -> Path | str | Exception:
    key = (tool.name, str(run_dir))
    if key not in _SAMPLES:
        try:
            _SAMPLES[key] = tool.sample(milestone, run_dir, out_dir)
        except Exception as e:  # shown on the page, in one line, instead
            _SAMPLES[key] = e
    return _SAMPLES[key]


def _cost(c, words) -> str:
    runs = tables.finished_runs(c)
    flops = sum(r.get("train_flops") or 0 for r in runs)
    rates = [r["flops_per_s"] for r in runs if r.get("flops_per_s")]
    rate = f"{statistics.mean(rates):.3g}" if rates else "-"
    seconds, mfu = tables.cost(c)
    return (f"<h3>{_e(words['cost'])}</h3><p>{_e(words['wall'])}: {seconds} ({len(runs)} runs); "
            f"{_e(words['flops'])}: {flops:.3g}; {_e(words['flops_per_s'])}: {rate} "
            f"({_e(words['mfu'])} {mfu})</p>")


def _provenance(c, words) -> str:
    runs = tables.finished_runs(c)

    def values(get) -> str:
        found = sorted({str(v) for v in map(get, runs) if v not in (None, "")})
        return ", ".join(found) or words["not_recorded"]

    rows = [("commit", values(lambda r: _commit(r.get("commit", "")))),
            ("torch", values(lambda r: r.get("versions", {}).get("torch"))),
            ("cpu", values(lambda r: r.get("versions", {}).get("cpu"))),
            ("threads", values(lambda r: r.get("threads"))),
            ("precision", values(lambda r: r.get("precision"))),
            ("preset", c.preset), ("seeds", ", ".join(map(str, c.seeds)))]
    items = "".join(f"<dt>{_e(words[k])}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    return (f"<h3>{_e(words['provenance'])}</h3><dl class=\"prov\">{items}</dl>"
            f"<p><b>{_e(words['reproduce'])}:</b> <code>{_e(c.command)}</code></p>")


def _footer(review, words) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (f"<footer><p>{_e(words['made_by'])} <code>{_e(review.command)}</code>. {_e(words['written'])} "
            f"{stamp} on {_e(cpu_model())} (Python {platform.python_version()}).</p></footer>")


# --------------------------------------------------------------------------------------------------
# Small pieces


def short_reason(reason: str) -> tuple[str, str]:
    """(what is missing, the command that gets it) from a missing-data reason: the downloader's
    "X not found or corrupt (...); download it from URL into DIR/ ..." becomes ("X not found", a curl
    line); anything else is kept, cut to one short line."""
    found = re.match(r"(?P<what>.+?) not found or corrupt .*?download it from (?P<url>\S+) "
                     r"into (?P<dir>\S+?)/? ", reason)
    if not found:
        return _shorten(reason), reason
    url, folder = found["url"], found["dir"]
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return f"{found['what']} not found", f"curl -fL --create-dirs -o {folder}/{name} {url}"


def _shorten(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _commit(commit: str) -> str:
    return commit[:12] + ("+dirty" if commit.endswith("+dirty") else "")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _describe(component) -> str:
    """A component in one sentence: its config's docstring (what was chosen), else its builder's."""
    config = type(component.config)
    for doc in (config.__doc__, component.build.__doc__):
        doc = " ".join((doc or "").split())
        if doc and not doc.startswith(config.__name__ + "("):  # a dataclass's made-up signature
            return re.split(r"(?<!al)(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z])", doc)[0].rstrip(".") + "."
    return ""


def _table(headers, rows) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _css(outcome: str) -> str:
    return outcome.lower().replace(" ", "-")


def _e(text) -> str:
    return html.escape(str(text), quote=True)
