"""Training and decoding speed of the translation models at the cpu preset (Multi30k De->En).

    python benchmarks/nmt_speed.py                # training steps/s per model (about 3 minutes)
    python benchmarks/nmt_speed.py --run RUN_DIR  # also: beam search on validation with a trained run

Training: milliseconds per step (batch 128 sentence pairs; forward, backward, clipping, Adam) over
``--steps`` steps after a warm-up, under bf16 autocast where the CPU has it, for the 2014 encoder-decoder
with and without attention and for the Transformer with each ``scaled_dot_product_attention`` kernel;
the mean FLOPs of those steps (``torch.utils.flop_counter``, what the budgets count) and the time one
step takes while it is counted (the runner counts one step of each batch shape).
Decoding: seconds to translate the 1,014 validation sentences, greedy and beam 5, with and without
stopping a sentence once its best finished hypothesis cannot be beaten, and the BLEU of each.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import sacrebleu
import torch
from torch.nn.attention import SDPBackend
from torch.utils.flop_counter import FlopCounterMode

from dlhistory import catalogue
from dlhistory.algorithms.decoding import beam_search
from dlhistory.data.translation import PAD
from dlhistory.hardware import Hardware, cpu_has_bf16, seed_everything
from dlhistory.milestones import transformer
from dlhistory.milestones.seq2seq import Translator
from dlhistory.report.tables import format_table
from dlhistory.spec import Context


def step_cost(milestone: str, variant: str | None, steps: int, data, warmup: int = 5) -> list[str]:
    """ms per training step of ``milestone``'s ``variant`` at the cpu preset, its mean GFLOPs, and ms
    per step while counted."""
    m = catalogue.get(milestone)
    recipe = m.recipe("cpu", variant)
    hw = Hardware(torch.device("cpu"), bf16=cpu_has_bf16(), channels_last=False)
    seed_everything(0, deterministic=False)
    model = recipe.model(data)
    procedure = recipe.algorithm(model, recipe.loss(), data, Context())
    plain = counted = flops = 0.0
    with hw.autocast():
        for step in range(warmup):
            procedure.update(step)
        for step in range(warmup, warmup + steps):
            start = time.perf_counter()
            procedure.update(step)
            plain += time.perf_counter() - start
        for step in range(warmup, warmup + steps):  # the same batches again, counted
            start = time.perf_counter()
            with FlopCounterMode(display=False) as counter:
                procedure.update(step)
            counted += time.perf_counter() - start
            flops += counter.get_total_flops()
    return [f"{1000 * plain / steps:.0f}", f"{flops / steps / 1e9:.1f}", f"{1000 * counted / steps:.0f}"]


def training(steps: int) -> list[list[str]]:
    data = catalogue.get("seq2seq").recipe("cpu").data(Context())
    rows = []
    for name, milestone, variant in (("rnn-encdec (no attention)", "seq2seq", "encdec"),
                                     ("rnn-search (attention)", "seq2seq", None)):
        rows.append([name, "-", *step_cost(milestone, variant, steps, data)])
    default = transformer._backends
    try:
        for kernel, backends in (("math (ours on CPU)", [SDPBackend.MATH]),
                                 ("flash", [SDPBackend.FLASH_ATTENTION])):
            transformer._backends = lambda device, b=backends: b
            rows.append(["transformer", kernel, *step_cost("transformer", None, steps, data)])
    finally:
        transformer._backends = default
    return rows


def decoding(run_dir: Path) -> list[list[str]]:
    translator = Translator(catalogue.get("transformer"), run_dir)
    data = catalogue.get("transformer").recipe("cpu").data(Context())  # BPE is deterministic: the run's
    source, _ = data.splits["val"]
    order = torch.argsort((source != PAD).sum(1))
    rows = []
    for beam, settle in ((1, True), (5, False), (5, True)):
        out = [""] * len(order)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_bf16()):
            for index in order.split(200):
                batch = source[index][:, : int((source[index] != PAD).sum(1).max())]
                ids = beam_search(translator.model, batch, beam, 0.6, settle=settle).ids
                for i, sentence in zip(index.tolist(), data.decode(ids), strict=True):
                    out[i] = sentence
        seconds = time.perf_counter() - start
        bleu = sacrebleu.corpus_bleu(out, [data.references("val")]).score
        rows.append([str(beam), "yes" if settle else "no", f"{seconds:.1f}", f"{bleu:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--run", type=Path, help="a trained run directory for the decoding benchmark")
    args = parser.parse_args()
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"bf16 autocast: {cpu_has_bf16()}")
    print(format_table(["model", "attention kernel", "ms per training step", "GFLOPs per step",
                        "ms per step while counting FLOPs"], training(args.steps)))
    if args.run:
        print()
        print(format_table(["beam", "stop settled sentences", "seconds (1,014 val sentences)", "val BLEU"],
                           decoding(args.run)))


if __name__ == "__main__":
    main()
