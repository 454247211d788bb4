"""The command line: ``dlhistory list | show | run | compare | sweep | review | translate | play``.

Every error a user can fix prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import catalogue
from .errors import UsageError

EPILOG = """examples:
  dlhistory list
  dlhistory show resnet
  dlhistory run alexnet --preset cpu
  dlhistory run resnet --variant plain model.n=5 algorithm.lr=0.05
  dlhistory run alexnet --resume latest
  dlhistory compare resnet --seeds 3
  dlhistory review --preset cpu
  dlhistory translate transformer "Ein Mann fährt Fahrrad." --attention-map attention.png
  dlhistory run dqn --env breakout --save-buffer
  dlhistory play dqn --env breakout --episodes 3 --gif breakout.gif
  torchrun --nproc_per_node=2 -m dlhistory run alexnet --preset smoke
"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may come before or after options (`run resnet --preset smoke model.n=5`); argparse
    # only takes positionals in one run, so collect the KEY=VALUE words it leaves over.
    args, extra = parser.parse_known_args(argv)
    target = next((name for name in ("overrides", "items", "sentences") if hasattr(args, name)), None)
    stray = [w for w in extra if w.startswith("-") or target is None
             or ("=" not in w and target != "sentences")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        setattr(args, target, [*getattr(args, target), *extra])
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args) or 0
    except UsageError as e:
        print(f"dlhistory: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("dlhistory: interrupted; continue with --resume latest", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlhistory", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Deep learning's history, runnable: every milestone is a recipe of four components "
                    "(data, model, loss, algorithm), compared with the baseline it improved on.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="the timeline: year, milestone, what changed, the claim")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("show", help="a milestone's four components, configs and diff vs its baselines")
    _recipe_args(p)
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser("run", help="train one milestone (or a baseline) and print its results",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="overrides: dotted keys, e.g. model.n=5 algorithm.lr=0.05 data.train_size=1000")
    _recipe_args(p)
    _run_args(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="RUN_DIR",
                   help="continue an interrupted run: its directory, or the latest of this variant")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="steps between checkpoints (default: at each evaluation)")
    p.add_argument("--save-buffer", action="store_true",
                   help="checkpoints also hold DQN's replay memory, so --resume continues exactly")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("compare", help="the milestone and its baselines over seeds; does the claim hold?",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="overrides change every run of the experiment, e.g.\n"
                              "  dlhistory compare adam model.architecture=cnn  # the claim, another model")
    p.add_argument("milestone")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every run")
    p.add_argument("--preset", default="cpu", help="smoke | cpu | full (default cpu)")
    _env_arg(p)
    p.add_argument("--seeds", type=int, help="seeds per variant (default: the claim's, 3 for most)")
    _workers_arg(p)
    _run_args(p)
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser("sweep", help="a grid of overrides over seeds, in parallel, resumable",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="grid items: key=low:high:n (n log-spaced values), key=a,b,c, key=value\n"
                              "example: dlhistory sweep resnet algorithm.lr=1e-3:1:7 model.n=1,3 --seeds 3")
    p.add_argument("milestone")
    p.add_argument("items", nargs="*", metavar="KEY=GRID")
    p.add_argument("--preset", default="cpu", help="smoke | cpu | full (default cpu)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per grid point (default 1)")
    p.add_argument("--variants", nargs="+", help="variants to sweep (default: the milestone's own)")
    _workers_arg(p, "one per core")
    p.add_argument("--metric", help="metric to tabulate (default: the claim's, on the validation split)")
    _run_args(p)
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("translate", help="translate sentences with a trained seq2seq or transformer run")
    p.add_argument("milestone", help="seq2seq or transformer")
    p.add_argument("sentences", nargs="*", metavar="SENTENCE",
                   help='source sentences, e.g. "Ein Mann fährt Rad."')
    p.add_argument("--file", help="a text file of source sentences, one per line")
    p.add_argument("--variant", help="a baseline's run instead of the milestone's, e.g. encdec")
    p.add_argument("--checkpoint", help="a run directory or weights file (default: the newest run)")
    p.add_argument("--beam", type=int, default=5, help="beam width, 1 for greedy (default 5)")
    p.add_argument("--alpha", type=float, default=0.6, help="length-penalty exponent (default 0.6)")
    p.add_argument("--attention-map", metavar="PNG", help="draw the first sentence's attention as a heat map")
    p.add_argument("--runs-dir", default="runs", help="where runs are (default ./runs)")
    p.set_defaults(handler=cmd_translate)

    p = sub.add_parser("review", help="compare every milestone of the timeline and write a summary")
    p.add_argument("--preset", default="cpu", help="smoke | cpu | full (default cpu)")
    p.add_argument("--seeds", type=int, help="seeds per variant (default: each claim's, 3 for most)")
    p.add_argument("--only", nargs="+", metavar="MILESTONE", help="review only these milestones")
    _workers_arg(p)
    _run_args(p)
    p.set_defaults(handler=cmd_review)

    p = sub.add_parser("play", help="watch a trained DQN play: scores, and an animated GIF")
    p.add_argument("milestone", help="dqn")
    _env_arg(p)
    p.add_argument("--preset", default="cpu", help="the preset whose newest run plays (default cpu)")
    p.add_argument("--variant", help="a baseline's run instead, e.g. linear")
    p.add_argument("--checkpoint", help="a run directory (default: the newest run of the preset)")
    p.add_argument("--episodes", type=int, default=3, help="games to play (default 3)")
    p.add_argument("--gif", metavar="PATH", help="write the games as an animated GIF")
    p.add_argument("--seed", type=int, default=0, help="first environment seed of the games (default 0)")
    p.add_argument("--runs-dir", default="runs", help="where runs are (default ./runs)")
    p.set_defaults(handler=cmd_play)
    return parser


def _recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("milestone", help="milestone key, e.g. alexnet (see 'dlhistory list')")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. model.n=5")
    p.add_argument("--preset", default="cpu", help="smoke | cpu | full (default cpu)")
    p.add_argument("--variant", help="a baseline to run instead of the milestone, e.g. plain")
    _env_arg(p)


def _env_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", help="the environment, for milestones that act in one (dqn: cartpole, breakout)")


def _workers_arg(p: argparse.ArgumentParser, default: str = "1, or one per core for a grid of small runs "
                                                           "such as adam's") -> None:
    p.add_argument("--workers", type=int,
                   help=f"runs in parallel, in processes that share the cores (default {default})")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: cuda if present)")
    p.add_argument("--precision", default="auto", help="auto | bf16 | fp32 (default: bf16 where supported)")
    p.add_argument("--runs-dir", default="runs", help="where runs are written (default ./runs)")
    p.add_argument("--data-dir", help="a folder holding the datasets (also: env DLHISTORY_DATA)")
    p.add_argument("--evals", type=int, default=10, help="validation evaluations during training")
    p.add_argument("--deterministic", action="store_true", help="deterministic algorithms (slower)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _run_options(args: argparse.Namespace) -> dict:
    return {"device": args.device, "precision": args.precision, "runs_dir": args.runs_dir,
            "data_dir": args.data_dir, "evals": args.evals, "deterministic": args.deterministic,
            "progress": args.progress}


# --------------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> None:
    from .report.tables import format_table

    rows = [[str(m.year), m.key, m.title, ", ".join(m.changes), m.showed] for m in catalogue.CATALOGUE]
    print(format_table(["year", "key", "milestone", "changed", "what it showed"], rows))


def cmd_show(args: argparse.Namespace) -> None:
    from .config import flat_items
    from .runner import load_recipe
    from .spec import KINDS

    m = catalogue.get(args.milestone)
    args.preset = m.preset_for(args.preset, args.env)
    recipe = load_recipe(m, args.preset, args.variant, tuple(args.overrides))
    print(f"{m.year} {m.title} ({m.key}): {m.showed}\n  {m.citation}\n  {m.url}\n")
    print(f"recipe: {args.variant or m.variant} @ {args.preset}")
    for kind in KINDS:
        component = getattr(recipe, kind)
        print(f"  {kind:<9} {component.name}")
        for key, value in flat_items(component.config):
            print(f"      {kind}.{key} = {value!r}")
    print(f"\nchanges vs the baselines: {', '.join(m.changes)}")
    ours_recipe = m.recipe(args.preset)
    for baseline in m.baselines:
        other = m.recipe(args.preset, baseline)
        print(f"  baseline {baseline}:")
        for kind in other.differs_from(ours_recipe):
            ours, theirs = getattr(ours_recipe, kind), getattr(other, kind)
            print(f"    {kind:<9} {ours.name} -> {theirs.name}")
    print(f"\nclaim: {m.claim.statement}")
    if m.claim.thresholds:
        sign = ">=" if m.claim.direction == "max" else "<="
        print("  thresholds: " + ", ".join(f"{p} {m.claim.metric} {sign} {t}"
                                           for p, t in m.claim.thresholds.items()))
    print(f"  paper: {m.claim.paper}")


def cmd_run(args: argparse.Namespace) -> None:
    from . import runner
    from .report.tables import format_table

    m = catalogue.get(args.milestone)
    preset = m.preset_for(args.preset, args.env)
    if args.save_buffer and m.recipe(preset).environment is None:
        raise UsageError(f"--save-buffer: {m.key} keeps no replay memory (dqn does); drop --save-buffer")
    options = runner.RunOptions(preset=preset, variant=args.variant,
                                seed=args.seed, overrides=tuple(args.overrides), resume=args.resume,
                                checkpoint_every=args.checkpoint_every, save_replay=args.save_buffer,
                                **_run_options(args))
    result = runner.run(m, options)
    if result.get("rank", 0) != 0:
        return
    keys = [k for k in result if k.startswith(("train_", "val_", "test_"))]
    keys += ["samples_per_s", "parameters", "precision", "device"]
    print(format_table(["metric", "value"], [[k, _fmt(result.get(k))] for k in keys]))
    print(f"run directory: {result['run_dir']}")


def cmd_compare(args: argparse.Namespace) -> None:
    from .comparison import compare, save
    from .report.tables import format_table, verdict_word

    m = catalogue.get(args.milestone)
    args.preset = m.preset_for(args.preset, args.env)
    _check_seeds(args.seeds)
    _check_workers(args.workers)
    c = compare(m, args.preset, args.seeds, log=_log, workers=args.workers, overrides=tuple(args.overrides),
                **_run_options(args))
    paths = save(c, Path(args.runs_dir) / m.key / f"compare-{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"\n{m.year} {m.title} ({args.preset}, seeds {c.seeds}): {m.claim.statement}")
    print(format_table(c.headers(), c.rows()))
    if c.verdict.table:
        print()
        print(format_table(*c.verdict.table))
    print(f"paper: {m.claim.paper}")
    print(f"claim {verdict_word(c.verdict.holds)}: {c.verdict.reason}")
    shown = ", ".join(str(p) for k, p in paths.items() if k.startswith("figure"))
    print(f"wall time {c.seconds:.0f} s; summary {paths['md']}; figures {shown}")


def cmd_sweep(args: argparse.Namespace) -> None:
    from .report.figures import sweep_figure
    from .report.tables import format_table
    from .sweep import run_sweep, summarize, write_csv

    m = catalogue.get(args.milestone)
    _check_seeds(args.seeds)
    if not args.items:
        raise UsageError("sweep needs at least one grid item, e.g. algorithm.lr=1e-4:1e-1:7")
    # Selection happens on validation data: a test-set claim metric is swept on its val_ twin.
    metric = args.metric or m.claim.metric.replace("test_", "val_")
    options = {k: v for k, v in _run_options(args).items() if k != "progress"}
    out, axes, records = run_sweep(m, args.items, args.preset, args.seeds, args.variants, args.workers,
                                   log=_log, **options)
    rows = summarize(axes, records, metric)
    if not rows:
        raise UsageError(f"no run reported {metric!r}; pick another with --metric")
    write_csv(out / "results.csv", rows)
    sweep_figure(axes, rows, metric, f"{m.year} {m.title}: {metric} ({args.preset}, {args.seeds} seeds)",
                 out / "sweep.png")
    headers = list(rows[0])
    print(format_table(headers, [[_fmt(r[h]) for h in headers] for r in rows]))
    print(f"results: {out / 'results.csv'}; figure: {out / 'sweep.png'}")


def cmd_translate(args: argparse.Namespace) -> None:
    from .translate import Translator, find_run

    sentences = list(args.sentences)
    if args.file:
        try:
            sentences += [line.strip() for line in Path(args.file).read_text(encoding="utf-8").splitlines()
                          if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--file {args.file}: cannot read it ({e.__class__.__name__}); "
                             "give a UTF-8 text file, one sentence per line") from None
    if not sentences:
        raise UsageError('nothing to translate: give sentences ("Ein Mann fährt Rad.") or --file in.txt')
    if args.beam < 1:
        raise UsageError(f"--beam {args.beam}: the beam width must be at least 1")
    run_dir, weights = find_run(args.runs_dir, args.milestone, args.variant, args.checkpoint)
    translator = Translator(run_dir, weights)
    if args.attention_map and not getattr(translator.model.config, "attention", True):
        raise UsageError(f"{translator.name} has no attention to draw (the encoder-decoder without "
                         "attention reads one fixed vector); drop --attention-map")
    result = translator.translate(sentences, args.beam, args.alpha)
    _log(f"{translator.name}: {run_dir}")
    for sentence in result.sentences:
        print(sentence)
    if args.attention_map:
        from .report.figures import attention_map

        source, output = result.source_tokens[0], result.output_tokens[0]
        attention_map(source, output, result.hypotheses.attention[0, : len(output), : len(source)].numpy(),
                      f"{translator.name}: {sentences[0]}", Path(args.attention_map))
        _log(f"attention map: {args.attention_map}")


def cmd_review(args: argparse.Namespace) -> None:
    from .comparison import review, save
    from .records import write_json
    from .report.tables import REVIEW_HEADERS, format_table, review_markdown, review_rows

    _check_seeds(args.seeds)
    milestones = tuple(catalogue.get(k) for k in args.only) if args.only else catalogue.CATALOGUE
    start = time.perf_counter()
    _check_workers(args.workers)
    entries = review(milestones, args.preset, args.seeds, log=_log, workers=args.workers,
                     **_run_options(args))
    seconds = time.perf_counter() - start
    out = Path(args.runs_dir) / "review" / f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    for e in entries:
        if e.comparison is not None:
            save(e.comparison, out / e.milestone.key)
    (out / "summary.md").write_text(review_markdown(entries, args.preset, args.seeds, seconds))
    write_json(out / "summary.json", {
        "preset": args.preset, "seeds": args.seeds, "seconds": round(seconds, 1),
        "milestones": [e.comparison.to_json() if e.comparison else
                       {"milestone": e.milestone.key, "year": e.milestone.year, "skipped": e.skipped}
                       for e in entries]})
    print(f"\ndlhistory review ({args.preset} preset, {args.seeds} seeds, {seconds / 60:.1f} min)")
    print(format_table(REVIEW_HEADERS, review_rows(entries)))
    print(f"summary: {out / 'summary.md'} and {out / 'summary.json'}")


def cmd_play(args: argparse.Namespace) -> None:
    from .play import play

    m = catalogue.get(args.milestone)
    if args.episodes < 1:
        raise UsageError(f"--episodes {args.episodes}: play at least 1 game")
    if args.gif and Path(args.gif).suffix.lower() != ".gif":
        raise UsageError(f"--gif {args.gif}: the file must end in .gif")
    result = play(m, m.preset_for(args.preset, args.env), args.variant, args.checkpoint, args.runs_dir,
                  args.episodes, args.seed, Path(args.gif) if args.gif else None)
    _log(f"{result.name}: {result.run_dir}")
    for i, score in enumerate(result.scores):
        print(f"game {i + 1} (environment seed {args.seed + i}): score {score:g}")
    if args.gif:
        _log(f"animation: {args.gif} ({result.frames} frames)")


def _check_seeds(seeds: int | None) -> None:
    if seeds is not None and seeds < 1:
        raise UsageError(f"--seeds {seeds}: need at least 1 seed")


def _check_workers(workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: need at least 1 worker")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
