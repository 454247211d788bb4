"""The command line: ``dlhistory list | show | run | compare | sweep | review`` and the milestones' own
tools (``translate``, ``play``, ...), which each milestone registers in its ``tools``.

This module parses arguments and prints; the work happens in the API (:mod:`dlhistory`) and the text in
:mod:`dlhistory.report.tables`. Every error a user can fix prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .config import shorten
from .errors import UsageError
from .records import writable_folder
from .report.i18n import LANGUAGES

EPILOG = """examples:
  dlhistory list
  dlhistory show resnet
  dlhistory run alexnet --preset cpu
  dlhistory run resnet --variant plain model.n=5 algorithm.lr=0.05
  dlhistory run alexnet --resume latest
  dlhistory compare resnet --seeds 3
  dlhistory review --preset cpu
  dlhistory translate transformer "Ein Mann fährt Fahrrad." --attention-map attention.png
  dlhistory run dqn --preset cpu-breakout algorithm.save_buffer=true
  dlhistory play dqn --env breakout --episodes 3 --gif breakout.gif
  torchrun --nproc_per_node=2 -m dlhistory run alexnet --preset smoke
"""


CONTINUE = {"run": "continue with --resume latest",
            "compare": "run the same command again: finished runs are reused, the interrupted one continues",
            "review": "run the same command again: finished runs are reused, the interrupted one continues",
            "sweep": "run the same command again: finished points are kept"}
SEEDS = 2**31
"""Seeds are 0 .. 2^31 - 1: every generator the runs draw from (torch, numpy, the environments) takes them."""


def main(argv: list[str] | None = None) -> int:
    """Parse, check, run, print; a fixable error is one line on stderr and exit code 2. As a program
    (``argv`` None), it first re-executes itself with tcmalloc preloaded where that exists
    (:mod:`dlhistory.allocator`)."""
    if argv is None:
        from .allocator import preload

        preload(sys.argv[1:])
    # SIGTERM (a scheduler's or `kill`'s) stops a run as Ctrl-C does, with its message and exit code.
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    command = None
    try:
        parser = build_parser()  # imports the catalogue: inside the try, so Ctrl-C here is one line too
        args = parse(parser, argv)
        command = getattr(args, "command", None)
        if not command:
            parser.print_help()
            return 0
        check(args)
        return args.handler(args) or 0
    except UsageError as e:
        print(f"dlhistory: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"dlhistory: interrupted; {CONTINUE.get(command, 'nothing was lost')}", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is the one line every other error is."""

    def error(self, message: str):
        raise UsageError(f"{shorten(message, 200)}; see '{self.prog} --help'")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    # Overrides may come before or after options (`run resnet --preset smoke model.n=5`); argparse
    # only takes positionals in one run, so collect the words it leaves over into the command's `rest`.
    args, extra = parser.parse_known_args(argv)
    rest = getattr(args, "rest", None)
    stray = [w for w in extra if w.startswith("-") or rest is None
             or ("=" not in w and rest in ("overrides", "items"))]
    if stray:
        parser.error(f"unrecognized arguments: {shorten(' '.join(stray))}")
    if extra:
        setattr(args, rest, [*getattr(args, rest), *extra])
    for name, value in vars(args).items():  # no option of any command means a number this large
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**31:
            raise UsageError(f"--{name.replace('_', '-')} {shorten(str(value), 30)}: too large")
    return args


def check(args: argparse.Namespace) -> None:
    """What can be said wrong before anything runs: counts, seeds, folders, options that clash."""
    for name in ("seeds", "workers", "evals"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name} {value}: need at least 1")
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < SEEDS:
        raise UsageError(f"--seed {shorten(str(seed))}: a seed is a whole number from 0 to {SEEDS - 1}")
    if getattr(args, "checkpoint_every", None) is not None and args.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every {args.checkpoint_every}: need at least 1 step")
    if getattr(args, "resume", None):
        given = [f"--{name}" for name in ("preset", "variant", "seed")
                 if getattr(args, name, None) is not None]
        if given:
            raise UsageError(f"--resume continues a run as it was started; drop {' and '.join(given)}")
    if hasattr(args, "device"):  # before any run starts, not in the first run of a comparison
        from .hardware import resolve

        resolve(args.device, args.precision)
    if hasattr(args, "preset") and args.preset is None:
        args.preset = "cpu"
    if hasattr(args, "seed") and args.seed is None:
        args.seed = 0
    if getattr(args, "runs_dir", None) is not None:
        writable_folder(args.runs_dir, "--runs-dir")
    if getattr(args, "data_dir", None) is not None and not os.access(args.data_dir, os.R_OK | os.X_OK):
        raise UsageError(f"--data-dir {shorten(args.data_dir)}: no readable folder there")
    if getattr(args, "preset", None) == "full" and getattr(args, "device", "auto") in ("auto", "cpu"):
        import torch

        if not torch.cuda.is_available():
            _log("note: the full preset is paper scale, meant for a GPU; on this CPU it can take many hours "
                 "(--preset cpu shows the claim in minutes)")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    _recipe_args(p, preset_default=None)
    _run_args(p)
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="RUN_DIR",
                   help="continue an interrupted run: its directory, or the latest of this variant")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="steps between checkpoints (default: at each evaluation)")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("compare", help="the milestone and its baselines over seeds; does the claim hold?",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="overrides change every run of the experiment, e.g.\n"
                              "  dlhistory compare adam model.architecture=cnn  # the claim, another model")
    p.add_argument("milestone")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every run")
    _preset_arg(p)
    p.add_argument("--seeds", type=int, help="seeds per variant (default: the claim's, 3 for most)")
    _workers_arg(p)
    _force_arg(p)
    _run_args(p)
    p.set_defaults(handler=cmd_compare, rest="overrides")

    p = sub.add_parser("sweep", help="a grid of overrides over seeds, in parallel, resumable",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="grid items: key=low:high:n (n log-spaced values), key=a,b,c, key=value\n"
                              "example: dlhistory sweep resnet algorithm.lr=1e-3:1:7 model.n=1,3 --seeds 3")
    p.add_argument("milestone")
    p.add_argument("items", nargs="*", metavar="KEY=GRID")
    _preset_arg(p)
    p.add_argument("--seeds", type=int, default=1, help="seeds per grid point (default 1)")
    p.add_argument("--variants", nargs="+", help="variants to sweep (default: the milestone's own)")
    _workers_arg(p, "one per core")
    p.add_argument("--metric", help="metric to tabulate (default: the claim's, on the validation split)")
    _run_args(p)
    p.set_defaults(handler=cmd_sweep, rest="items")

    p = sub.add_parser("review", help="compare every milestone of the timeline and write its page",
                       description="Compare every milestone with its baselines and write the review as "
                                   "one page (index.html, rewritten after each milestone) beside "
                                   "summary.md and summary.json. Runs already made by this "
                                   "code with the same configs and seeds are reused, so an interrupted "
                                   "review continues where it stopped; --force runs them again.")
    _preset_arg(p)
    p.add_argument("--seeds", type=int, help="seeds per variant (default: each claim's, 3 for most)")
    p.add_argument("--only", nargs="+", metavar="MILESTONE", help="review only these milestones")
    p.add_argument("--lang", default="en", choices=LANGUAGES,
                   help="the page's language: en, or ko (the lecture's Korean) (default en)")
    _workers_arg(p, "one per core on the CPU, each with one thread; one on a GPU")
    _force_arg(p)
    _run_args(p)
    p.set_defaults(handler=cmd_review)

    for tool, owners in tools().items():
        p = sub.add_parser(tool.name, help=f"{tool.help} ({', '.join(owners)})")
        tool.arguments(p)
        p.set_defaults(handler=lambda args, tool=tool: run_tool(tool, args))
    return parser


def tools() -> dict:
    """Every milestone's tools, each with the milestones that offer it; one name, one tool."""
    from . import catalogue

    found: dict = {}
    for m in catalogue.CATALOGUE:
        for tool in m.tools:
            same = next((t for t in found if t.name == tool.name), None)
            if same is not None and same is not tool:
                raise ValueError(f"two different tools are called {tool.name!r}")
            found.setdefault(tool, []).append(m.key)
    return found


def run_tool(tool, args: argparse.Namespace) -> None:
    from . import catalogue

    m = catalogue.get(args.milestone)
    if tool not in m.tools:
        owners = [k.key for k in catalogue.CATALOGUE if tool in k.tools]
        raise UsageError(f"{m.key} has no '{tool.name}'; it is for {', '.join(owners)}")
    tool.main(m, args)


def _recipe_args(p: argparse.ArgumentParser, preset_default: str | None = "cpu") -> None:
    p.add_argument("milestone", help="milestone key, e.g. alexnet (see 'dlhistory list')")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. model.n=5")
    _preset_arg(p, preset_default)
    p.add_argument("--variant", help="a baseline to run instead of the milestone, e.g. plain")
    p.set_defaults(rest="overrides")


def _preset_arg(p: argparse.ArgumentParser, default: str | None = "cpu") -> None:
    p.add_argument("--preset", default=default,
                   help="smoke | cpu | full, or a milestone's own, e.g. cpu-breakout (default cpu)")


def _workers_arg(p: argparse.ArgumentParser, default: str = "1, or one per core for a grid of small runs "
                                                           "such as adam's") -> None:
    p.add_argument("--workers", type=int,
                   help=f"runs in parallel, in processes that share the cores (default {default})")


def _force_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true",
                   help="run everything again instead of reusing finished runs of this code")


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
            "progress": args.progress and sys.stderr.isatty()}  # a bar in a log file is debris


# --------------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> None:
    from . import catalogue
    from .report.tables import timeline_text

    print(timeline_text(catalogue.CATALOGUE))


def cmd_show(args: argparse.Namespace) -> None:
    from . import catalogue
    from .report.tables import milestone_text

    print(milestone_text(catalogue.get(args.milestone), args.preset, args.variant, tuple(args.overrides)))


def cmd_run(args: argparse.Namespace) -> None:
    import dlhistory

    from .report.tables import result_text

    result = dlhistory.run(args.milestone, preset=args.preset, variant=args.variant, seed=args.seed,
                           overrides=args.overrides, resume=args.resume,
                           checkpoint_every=args.checkpoint_every, **_run_options(args))
    if result.get("rank", 0) == 0:
        print(result_text(result))


def cmd_compare(args: argparse.Namespace) -> None:
    import dlhistory

    from .report.tables import comparison_text

    c = dlhistory.compare(args.milestone, args.preset, args.seeds, log=_log, workers=args.workers,
                          overrides=tuple(args.overrides), reuse=not args.force, **_run_options(args))
    print()
    print(comparison_text(c))


def cmd_sweep(args: argparse.Namespace) -> None:
    import dlhistory

    from .report.tables import sweep_text

    options = {k: v for k, v in _run_options(args).items() if k != "progress"}
    result = dlhistory.sweep(args.milestone, args.items, args.preset, args.seeds, variants=args.variants,
                             workers=args.workers, metric=args.metric, log=_log, **options)
    print(sweep_text(result))


def cmd_review(args: argparse.Namespace) -> None:
    import dlhistory

    from .report.tables import review_text

    result = dlhistory.review(args.preset, args.seeds, only=args.only, log=_log, workers=args.workers,
                              reuse=not args.force, lang=args.lang, **_run_options(args))
    print()
    print(review_text(result))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
