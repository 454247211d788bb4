"""``dlhistory embed simclr`` and ``dlhistory neighbours simclr``: what a finished run's encoder learnt.

* embed -- the test images' features projected to 2-D (PCA, or t-SNE with ``--method tsne``, both
  scikit-learn's), one colour per class: classes that form islands are what a linear probe separates;
* neighbours -- a test image and its nearest test images in feature space (cosine similarity).

The encoder is the run's own (``encoder.safetensors``; the newest finished run of the variant, or
``--checkpoint``), and which run is said on stderr. Used by the milestone, not part of what it
computes: a change here keeps its runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ..errors import UsageError
from ..records import atomic_write
from ..spec import Context, Milestone, Tool
from . import finished_run, load_weights, output_png, run_recipe, use_threads, variant_of

MAX_POINTS = 10_000


def _common(p) -> None:
    p.add_argument("--variant", help="a baseline's run instead, e.g. supervised or random")
    p.add_argument("--checkpoint", metavar="RUN", help="a finished run's directory (default: the newest)")
    p.add_argument("--runs-dir", default="runs", help="where runs are (default ./runs)")


def load_encoder(milestone: Milestone, args, tool: str):
    """(encoder in evaluation mode, the run's data, the run directory) of the finished run ``args``
    point to."""
    variant = variant_of(milestone, args.variant)
    run_dir, weights = finished_run(args.runs_dir, milestone, variant, args.checkpoint, "encoder")
    _, recipe = run_recipe(milestone, run_dir, tool)
    data = recipe.data(Context())
    encoder = recipe.model(data)["encoder"]
    load_weights(encoder, weights, "encoder", run_dir)
    return encoder.eval(), data, run_dir


@torch.no_grad()
def test_features(encoder, data, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images in [0, 1], features, labels) of the first ``n`` test images."""
    images, labels, features = [], [], []
    for x, y in data.eval_batches("test", 500):
        features.append(encoder(x))
        images.append(x * data.images.std + data.images.mean)
        labels.append(y)
        if sum(map(len, labels)) >= n:
            break
    return torch.cat(images)[:n], torch.cat(features)[:n], torch.cat(labels)[:n]


def _save(out: Path, fig, path_text: str) -> None:
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    except OSError as e:
        raise UsageError(f"cannot write {path_text[:80]}: {e.strerror or e}") from None


# --------------------------------------------------------------------------------------------------
# embed


def _embed_arguments(p) -> None:
    p.add_argument("milestone", help="simclr")
    p.add_argument("--out", default="embedding.png", help="the PNG to write (default embedding.png)")
    p.add_argument("--method", choices=("pca", "tsne"), default="pca",
                   help="the 2-D projection (default pca)")
    p.add_argument("--n", type=int, default=2000, help="test images to draw (default 2000)")
    _common(p)


def embed(features: torch.Tensor, method: str) -> torch.Tensor:
    """2-D coordinates (N, 2) of features (N, D) by PCA or t-SNE (seed 0)."""
    x = features.double().numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(2, init="pca", random_state=0, perplexity=min(30, len(x) - 1))
        return torch.from_numpy(tsne.fit_transform(x))
    from sklearn.decomposition import PCA

    return torch.from_numpy(PCA(2, random_state=0).fit_transform(x))


def embedding_figure(encoder, data, n: int, method: str, title: str):
    """A figure of the first ``n`` test images' features in 2-D, one colour per class."""
    import matplotlib.pyplot as plt

    _, features, labels = test_features(encoder, data, n)
    points, labels = embed(features, method).numpy(), labels.numpy()
    fig, ax = plt.subplots(figsize=(7, 6))
    for c, name in enumerate(data.images.classes):
        chosen = labels == c
        ax.scatter(points[chosen, 0], points[chosen, 1], s=4, color=plt.cm.tab10(c), label=name)
    ax.set(title=f"{title}: {len(labels)} test images, {method.upper()} of the encoder's features",
           xticks=[], yticks=[])
    ax.legend(markerscale=3, fontsize=8, loc="best")
    return fig


def _embed(milestone: Milestone, args) -> None:
    if not 10 <= args.n <= MAX_POINTS:
        raise UsageError(f"--n {args.n}: draw 10 to {MAX_POINTS:,} test images")
    out = output_png(args.out)
    use_threads()
    encoder, data, run_dir = load_encoder(milestone, args, "embed")
    fig = embedding_figure(encoder, data, args.n, args.method, milestone.key)
    _save(out, fig, args.out)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"{milestone.key}: {run_dir}", file=sys.stderr, flush=True)  # which run, once all went well
    print(f"wrote {out} ({args.n} points)")


# --------------------------------------------------------------------------------------------------
# neighbours


def _neighbours_arguments(p) -> None:
    p.add_argument("milestone", help="simclr")
    p.add_argument("index", type=int, help="a test image's index, 0 to 9,999")
    p.add_argument("--k", type=int, default=8, help="neighbours to show (default 8)")
    p.add_argument("--out", default="neighbours.png", help="the PNG to write (default neighbours.png)")
    _common(p)


def nearest(features: torch.Tensor, index: int, k: int) -> torch.Tensor:
    """Indices of the k images most similar (cosine) to image ``index``, itself excluded."""
    unit = torch.nn.functional.normalize(features, dim=1)
    similarity = unit @ unit[index]
    similarity[index] = -2.0
    return similarity.topk(k).indices


def _neighbours(milestone: Milestone, args) -> None:
    if not 1 <= args.k <= 64:
        raise UsageError(f"--k {args.k}: show 1 to 64 neighbours")
    out = output_png(args.out)
    use_threads()
    encoder, data, run_dir = load_encoder(milestone, args, "neighbours")
    size = data.images.size("test")
    if not 0 <= args.index < size:
        raise UsageError(f"index {args.index}: a test image is 0 to {size - 1:,}")
    images, features, labels = test_features(encoder, data, size)
    chosen = [args.index, *nearest(features, args.index, args.k).tolist()]
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(chosen), figsize=(1.3 * len(chosen), 1.8), squeeze=False)
    for i, (ax, j) in enumerate(zip(axes[0], chosen, strict=True)):
        ax.imshow(images[j, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(("query\n" if i == 0 else "") + data.images.classes[int(labels[j])], fontsize=7)
        ax.axis("off")
    _save(out, fig, args.out)
    plt.close(fig)
    print(f"{milestone.key}: {run_dir}", file=sys.stderr, flush=True)
    print(f"wrote {out}: test image {args.index} and its {args.k} nearest")


EMBED = Tool("embed", "draw a finished simclr run's test features in 2-D", _embed_arguments, _embed)
NEIGHBOURS = Tool("neighbours", "show a test image's nearest neighbours in a simclr run's features",
                  _neighbours_arguments, _neighbours)
