"""The review page's style sheet: light and dark (``prefers-color-scheme``), screen and print."""

STYLE = """
:root { --fg: #1b1f24; --bg: #ffffff; --muted: #5b6470; --card: #f4f6f8; --line: #d6dbe1;
  --holds: #1a7f37; --fails: #cf222e; --nj: #9a6700; --skip: #6e7781; --accent: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9aa4ae; --card: #161b22; --line: #30363d;
    --holds: #3fb950; --fails: #f85149; --nj: #d29922; --skip: #8b949e; --accent: #58a6ff; }
  img { background: #ffffff; }
}
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "Noto Sans KR", sans-serif; color: var(--fg);
  background: var(--bg); max-width: 980px; margin: 0 auto; padding: 1.5rem; }
a { color: var(--accent); }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
.sub, .muted, .small, figcaption, .doc, .was { color: var(--muted); }
.small { font-size: 12px; }
code, pre { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, monospace; }
pre.sample { background: var(--card); padding: .8rem; white-space: pre-wrap; border-radius: 6px; }
.strip { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: .5rem; }
.cell { display: flex; flex-direction: column; padding: .5rem .6rem; border: 1px solid var(--line);
  border-radius: 6px; text-decoration: none; color: var(--fg); background: var(--card); }
.cell .year { color: var(--muted); font-size: 12px; } .cell .name { font-weight: 600; }
.badge { display: inline-block; font-size: 12px; font-weight: 700; padding: 0 .45rem; border-radius: 10px;
  color: #ffffff; background: var(--skip); vertical-align: middle; width: fit-content; }
.badge.holds { background: var(--holds); } .badge.fails { background: var(--fails); }
.badge.not-judged { background: var(--nj); }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: .5rem; margin: .6rem 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .5rem .6rem; }
.card h4 { margin: 0 0 .2rem; } .card p { margin: .2rem 0; font-size: 13px; }
.card.changed { border: 2px solid var(--accent); }
.tag { font-size: 11px; color: var(--accent); font-weight: 700; text-transform: uppercase; }
blockquote { margin: .5rem 0; padding: .2rem .8rem; border-left: 4px solid var(--line); color: var(--muted); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: .15rem .45rem; text-align: left; }
th { background: var(--card); }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; border-radius: 4px; }
svg { width: 100%; max-width: 600px; font-size: 11px; fill: var(--fg); }
svg .dot { fill: var(--accent); fill-opacity: .75; } svg .mean { stroke: var(--fg); stroke-width: 2; }
svg .threshold { stroke: var(--fails); stroke-dasharray: 4 3; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: 0 1rem; font-size: 13px; }
dl.prov dt { color: var(--muted); } dl.prov dd { margin: 0; }
.lenses li { margin-bottom: .6rem; }
.fix code { word-break: break-all; }
@media (max-width: 700px) { .cards { grid-template-columns: repeat(2, 1fr); } }
@media print {
  body { max-width: none; font-size: 11pt; } a { color: inherit; text-decoration: none; }
  section.milestone { break-inside: avoid-page; } .strip { grid-template-columns: repeat(5, 1fr); }
  img { max-height: 9cm; width: auto; }
}
"""
