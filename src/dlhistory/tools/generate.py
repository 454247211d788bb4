"""``dlhistory generate gan``: draw samples of a finished GAN (or VAE) run as one picture.

A grid of ``--n`` samples from noise of ``--seed``; ``--interpolate`` draws walks through the latent space
instead, each row going in straight steps from one z to another (Radford et al. 2016, section 6.1: smooth
transitions mean the generator has not memorised images). The run is the newest finished one of the
variant, or ``--checkpoint``, and which one is said on stderr. Used by the milestone, not part of what
it computes: a change here keeps its runs.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from ..records import atomic_write
from ..spec import Milestone, Tool
from . import finished_run, load_weights, output_png, run_recipe, use_threads, variant_of

MAX_SAMPLES = 1024
STEPS = 8
"""Images per row of an interpolation."""


@dataclass(frozen=True)
class Shape:
    """What the model builder reads from its data: the image shape."""

    shape: tuple[int, int, int] = (1, 28, 28)


def _arguments(p) -> None:
    p.add_argument("milestone", help="gan")
    p.add_argument("--n", type=int, default=64, help="samples (default 64), or rows of --interpolate")
    p.add_argument("--out", default="samples.png", help="the PNG to write (default samples.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    p.add_argument("--interpolate", action="store_true",
                   help=f"walk the latent space: each row {STEPS} steps from one z to another")
    p.add_argument("--variant", help="the baseline's run instead, e.g. vae")
    p.add_argument("--checkpoint", metavar="RUN", help="a finished run's directory (default: the newest)")
    p.add_argument("--runs-dir", default="runs", help="where runs are (default ./runs)")


def _check(args) -> Path:
    limit = MAX_SAMPLES // STEPS if args.interpolate else MAX_SAMPLES
    if not 1 <= args.n <= limit:
        raise UsageError(f"--n {args.n}: draw 1 to {limit} {'rows' if args.interpolate else 'samples'}")
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed {args.seed}: a whole number from 0 to {2**31 - 1}")
    return output_png(args.out)


def latents(n: int, latent: int, seed: int, interpolate: bool) -> torch.Tensor:
    """n noise vectors z ~ N(0, I), or n rows of STEPS points on the segments between pairs of them."""
    generator = torch.Generator().manual_seed(seed)
    if not interpolate:
        return torch.randn(n, latent, generator=generator)
    ends = torch.randn(2, n, 1, latent, generator=generator)
    t = torch.linspace(0, 1, STEPS)[None, :, None]
    return ((1 - t) * ends[0] + t * ends[1]).reshape(n * STEPS, latent)


def tile(images: torch.Tensor, columns: int) -> np.ndarray:
    """Images (N, 1, H, W) in [-1, 1] -> one grey picture (rows x columns, 1-pixel gaps), uint8."""
    n, _, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1), 255, dtype=np.uint8)
    pixels = ((images[:, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    for i, image in enumerate(pixels):
        r, c = divmod(i, columns)
        canvas[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = image
    return canvas


def draw(generator: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] for noise z: a GAN's generator, or a VAE's decoder mean (its ``generate``)."""
    return generator.generate(z) if hasattr(generator, "generate") else generator(z)


def save_grid(path: Path, images: torch.Tensor, columns: int) -> None:
    """Write images (N, 1, H, W) in [-1, 1] as one grey PNG grid, atomically (never a half-written file)."""
    import matplotlib.pyplot as plt

    picture = tile(images, columns)
    atomic_write(path, lambda tmp: plt.imsave(tmp, picture, cmap="gray", vmin=0, vmax=255, format="png"))


def load_generator(milestone: Milestone, run_dir: Path, weights: Path) -> torch.nn.Module:
    """The generator (or the VAE's decoder) of a finished run, in evaluation mode."""
    _, recipe = run_recipe(milestone, run_dir, "generate")
    generator = recipe.model(Shape())["generator"]
    load_weights(generator, weights, "generator", run_dir)
    return generator.eval()


def review_sample(milestone: Milestone, run_dir: Path, out_dir: Path) -> Path:
    """The review page's sample: 36 images of the run's generator (noise seed 0), as a grid."""
    generator = load_generator(milestone, run_dir, run_dir / "generator.safetensors")
    with torch.no_grad():
        images = draw(generator, latents(36, generator.latent, 0, False))
    out = out_dir / "samples.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_grid(out, images, 6)
    return out


def _generate(milestone: Milestone, args) -> None:
    out = _check(args)
    use_threads()
    variant = variant_of(milestone, args.variant)
    run_dir, weights = finished_run(args.runs_dir, milestone, variant, args.checkpoint, "generator")
    generator = load_generator(milestone, run_dir, weights)
    z = latents(args.n, generator.latent, args.seed, args.interpolate)
    with torch.no_grad():
        images = draw(generator, z)
    columns = STEPS if args.interpolate else math.ceil(math.sqrt(args.n))
    try:
        save_grid(out, images, columns)
    except OSError as e:
        raise UsageError(f"cannot write {args.out[:80]}: {e.strerror or e}") from None
    print(f"{milestone.key}: {run_dir}", file=sys.stderr, flush=True)  # which run, once all went well
    print(f"wrote {out} ({len(images)} images)")


GENERATE = Tool("generate", "draw samples of a finished gan run as a picture", _arguments, _generate,
                review_sample)
