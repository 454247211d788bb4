"""2015 GAN: a generator and a discriminator trained against each other produce realistic samples.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014; Radford, Metz & Chintala, "Unsupervised
Representation Learning with Deep Convolutional Generative Adversarial Networks" (DCGAN), ICLR 2016.
https://arxiv.org/abs/1511.06434

A generator G turns noise z into an image; a discriminator D tells real images from G's. D is trained
to tell them apart, G to fool D: a two-player game whose equilibrium is G reproducing the data
distribution (Goodfellow et al., section 4). Nothing is a likelihood: no term says how probable a real
image is under G, so the samples are not pulled towards the average of the images they could be, the
blur a likelihood-trained model shows. DCGAN made the game trainable with convolutional networks:
strided convolutions instead of pooling, batch normalisation, ReLU in G with tanh at its output,
LeakyReLU in D, Adam with lr 2e-4 and beta1 0.5 (section 3 and 4).

Here, on Fashion-MNIST at 28x28:

* data -- the training images, scaled to [-1, 1] (the 2014 Adam milestone's data component);
* model -- :class:`Generator` and :class:`Discriminator`, two networks of one model component;
* loss -- the adversarial loss (:class:`Adversarial`): the non-saturating G loss Goodfellow et al.
  recommend (section 3), or with ``loss.kind=minimax`` the original log(1 - D(G(z)));
* algorithm -- alternating D and G steps with Adam (:class:`AdversarialTraining`).

The baseline is a convolutional VAE (Kingma & Welling 2013) of the same data and budget, trained by
likelihood (the ELBO). Both are measured the way the field measures samples (measures/): FID in the
Inception-v3 pool features with n samples (n printed beside it), precision and recall (Kynkäänniemi
et al. 2019), and class coverage by the project's own Fashion-MNIST classifier. The loss is only a
proxy: the GAN's G and D losses do not fall as the samples improve (they measure each player against
the other, who also improves), which the figure shows beside the FID.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..algorithms.supervised import descend
from ..data.images import ImageData
from ..data.seeds import mix_seeds
from ..measures.samples import SampleQuality, SampleQualityConfig
from ..spec import Claim, Component, Context, Metric, Milestone, Panel, Recipe, Verdict
from ..tools.generate import GENERATE, draw, save_grid
from .adam import DATA

# ================================================================================================
# Data: Fashion-MNIST's training images (adam.DATA: no augmentation), in [-1, 1], G's tanh range.


def real_images(data: ImageData, step: int, batch_size: int) -> torch.Tensor:
    """The training batch of ``step`` in [-1, 1]: the data component's normalised batch, mapped back to
    pixels and rescaled (its epochs are a pure function of (seed, step), so a resumed run sees the same)."""
    x, _ = data.train_batch(step, batch_size)
    return (x * data.std + data.mean) * 2 - 1


# ================================================================================================
# Model: DCGAN's generator and discriminator, sized for 28x28 (7 -> 14 -> 28).


@dataclass(frozen=True)
class DCGANConfig:
    """DCGAN at 28x28: G projects z to 7x7 feature maps and upsamples twice, D mirrors it."""

    latent: int = 100
    """Dimensions of z (DCGAN: 100)."""
    width: int = 64
    """Channels of G's last hidden layer and D's first; the other layer has twice as many (DCGAN at
    64x64: 128 to 1024 over four layers)."""

    def __post_init__(self) -> None:
        if self.latent < 1 or self.width < 1:
            raise ValueError("needs latent >= 1 and width >= 1")


def dcgan_init(module: nn.Module) -> None:
    """"All weights were initialized from a zero-centered Normal distribution with standard deviation
    0.02" (section 4); batch norm's scale around 1, as the reference code does."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (N, latent) -> images (N, 1, 28, 28) in [-1, 1]. "The first layer ... could be called fully
    connected as it is just a matrix multiplication, but the result is reshaped into a 4-dimensional
    tensor"; then fractionally-strided convolutions, batch norm and ReLU, tanh at the output."""

    def __init__(self, config: DCGANConfig, channels: int = 1):
        super().__init__()
        w = config.width
        self.latent = config.latent
        self.project = nn.Sequential(nn.Linear(config.latent, 2 * w * 7 * 7, bias=False),
                                     nn.Unflatten(1, (2 * w, 7, 7)), nn.BatchNorm2d(2 * w), nn.ReLU())
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, channels, 4, stride=2, padding=1), nn.Tanh())  # no batch norm at the output
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.project(z))


class Discriminator(nn.Module):
    """Images (N, 1, 28, 28) -> one logit each (real vs generated): strided convolutions instead of
    pooling, LeakyReLU (slope 0.2), batch norm on every layer but the input one, no hidden fully
    connected layer ("the last convolution layer is flattened and then fed into a single sigmoid")."""

    def __init__(self, config: DCGANConfig, channels: int = 1):
        super().__init__()
        w = config.width
        self.body = nn.Sequential(
            nn.Conv2d(channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * w * 7 * 7, 1))
        self.apply(dcgan_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images).squeeze(1)  # (N,) logits; the sigmoid is in the loss


def dcgan(config: DCGANConfig, data: ImageData) -> dict[str, nn.Module]:
    """Two networks of one model component: the runner checkpoints and saves each."""
    channels = data.shape[0]
    return {"generator": Generator(config, channels), "discriminator": Discriminator(config, channels)}


MODEL = Component("dcgan", dcgan, DCGANConfig())


# ================================================================================================
# Loss: the adversarial game (Goodfellow et al. 2014, equation 1 and section 3).


@dataclass(frozen=True)
class AdversarialConfig:
    """min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]."""

    kind: Literal["non-saturating", "minimax"] = "non-saturating"
    """G's loss. 'minimax' minimises log(1 - D(G(z))), the game as written, whose gradient vanishes
    when D confidently rejects G's samples, as it does early on; 'non-saturating' maximises
    log D(G(z)) instead, "the same fixed point ... but much stronger gradients early in learning"."""


class Adversarial:
    """D's loss and G's loss, from D's logits (the sigmoid is folded into the cross-entropy, stably)."""

    def __init__(self, config: AdversarialConfig):
        self.kind = config.kind

    @staticmethod
    def discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """-log D(x) - log(1 - D(G(z))): binary cross-entropy, real labelled 1 and generated 0."""
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        if self.kind == "minimax":  # log(1 - sigmoid(l)) = -softplus(l)
            return -F.softplus(fake).mean()
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))  # -log D(G(z))


def adversarial(config: AdversarialConfig) -> Adversarial:
    return Adversarial(config)


LOSS = Component("adversarial", adversarial, AdversarialConfig())


# ================================================================================================
# Algorithm: alternate a D step and a G step (Goodfellow et al., Algorithm 1, with k = 1).


@dataclass(frozen=True)
class AdversarialTrainingConfig:
    """DCGAN's optimisation: Adam, lr 2e-4, beta1 0.5 ("0.9 resulted in training oscillation"),
    mini-batches of 128; a budget in steps, i.e. in images seen. The cpu budget, 3,000 steps of 64
    (3.2 epochs), is sized for a 2-core CPU: the comparison's six runs and their Inception FIDs must
    leave time for the nine other milestones of a review."""

    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    measure: SampleQualityConfig = field(default_factory=SampleQualityConfig)

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size) < 1 or not self.lr > 0 or not 0 <= self.beta1 < 1:
            raise ValueError("needs steps and batch_size >= 1, lr > 0 and 0 <= beta1 < 1")


EVALUATION_SEED = 1_000_003
"""The noise of the samples every evaluation measures: the same z each time, so curves compare."""
SNAPSHOT_SAMPLES = 64
"""Samples in the grid a run saves at each evaluation (the first of the evaluation's fixed z)."""


def noise(seed: int, n: int, latent: int, device: torch.device) -> torch.Tensor:
    return torch.randn(n, latent, generator=torch.Generator().manual_seed(seed)).to(device)


class AdversarialTraining:
    """One step: a D update on a real batch and a generated one, then a G update on fresh noise."""

    panels = (Panel("loss_d", ("train",), "D loss"), Panel("loss_g", ("train",), "G loss"),
              Panel("fd_classifier", ("val",), "Fréchet distance (classifier features)"))

    def __init__(self, config: AdversarialTrainingConfig, networks: dict[str, nn.Module], loss: Adversarial,
                 data: ImageData, ctx: Context):
        self.config, self.loss, self.data, self.ctx = config, loss, data, ctx
        self.G, self.D = networks["generator"], networks["discriminator"]
        self.total_steps, self.samples_per_step = config.steps, config.batch_size
        self.modules = {"generator": self.G, "discriminator": self.D}
        betas = (config.beta1, 0.999)
        self.optimizers = {"generator": torch.optim.Adam(self.G.parameters(), config.lr, betas=betas),
                           "discriminator": torch.optim.Adam(self.D.parameters(), config.lr, betas=betas)}
        self.quality = SampleQuality(config.measure, data)

    def cost_key(self, step: int) -> int:
        return 0

    def update(self, step: int) -> dict[str, Any]:
        batch = self.config.batch_size // self.ctx.world_size
        real = real_images(self.data, step, self.config.batch_size)
        device = real.device
        z = noise(mix_seeds(self.ctx.seed, self.ctx.rank, step), 2 * batch, self.G.latent, device)
        self.G.train()
        self.D.train()
        # D: real towards 1, generated towards 0; G's output is detached, G does not learn here.
        fake = self.G(z[:batch])
        loss_d = self.loss.discriminator(self.D(real), self.D(fake.detach()))
        self._step("discriminator", loss_d)
        # G: fool the D just updated, on fresh noise.
        loss_g = self.loss.generator(self.D(self.G(z[batch:])))
        self._step("generator", loss_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "loss": (loss_d + loss_g).detach()}

    def _step(self, name: str, loss: torch.Tensor) -> None:
        descend(self.optimizers[name], loss)

    @torch.no_grad()
    def samples(self, n: int) -> torch.Tensor:
        """n images from the generator (a VAE: its decoder's mean) in evaluation mode (batch norm's running
        statistics), fixed z."""
        self.G.eval()
        device = next(self.G.parameters()).device
        z = noise(EVALUATION_SEED, n, self.G.latent, device)
        return torch.cat([draw(self.G, b) for b in z.split(500)]).cpu()

    def evaluate(self, split: str) -> dict[str, float]:
        """'val': the classifier-feature measures of eval_samples samples; 'test': the final measures
        (FID in Inception-v3 features) of ``samples`` samples against the test images."""
        if split == "train":
            return {}
        final = split == "test"
        n = self.config.measure.samples if final else self.config.measure.eval_samples
        return self.quality.measure(self.samples(n), split, final)

    def snapshot(self, directory: Path, step: int) -> None:
        """Save a grid of samples at this evaluation (``samples/step-000600.png``), the same z every
        time, so a user can watch training: the pictures improve while the losses do not fall."""
        save_grid(directory / "samples" / f"step-{step + 1:06d}.png", self.samples(SNAPSHOT_SAMPLES), 8)

    def state_dict(self) -> dict:
        return {name: o.state_dict() for name, o in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])


def adversarial_training(config: AdversarialTrainingConfig, networks, loss, data, ctx: Context):
    return AdversarialTraining(config, networks, loss, data, ctx)


ALGORITHM = Component("alternating-adam", adversarial_training, AdversarialTrainingConfig())


# ================================================================================================
# Baseline: a convolutional VAE (Kingma & Welling 2013), trained by likelihood on the same budget.


class VAE(nn.Module):
    """An encoder like D (to a mean and log-variance of z) and a decoder like G (to Bernoulli pixel
    probabilities, as the paper's MNIST model): the same two convolutional shapes, one network."""

    def __init__(self, config: DCGANConfig, channels: int = 1):
        super().__init__()
        w, self.latent = config.width, config.latent
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * w * 7 * 7, 2 * config.latent))
        self.decoder = Generator(config, channels)
        self.decoder.upsample[-1] = nn.Identity()  # logits of the pixel probabilities, not tanh

    def forward(self, images: torch.Tensor,
                epsilon: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pixel logits, mean, log-variance) of images in [-1, 1]; ``epsilon`` (N, latent) is the
        standard normal noise of the reparameterisation trick (drawn here when not given)."""
        mean, log_var = self.encoder(images).chunk(2, dim=1)
        epsilon = torch.randn_like(mean) if epsilon is None else epsilon
        z = mean + epsilon * (0.5 * log_var).exp()  # the reparameterisation trick
        return self.decoder(z), mean, log_var

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Samples in [-1, 1]: the decoder's mean image for each z ~ N(0, I)."""
        return torch.sigmoid(self.decoder(z)) * 2 - 1


def vae(config: DCGANConfig, data: ImageData) -> dict[str, nn.Module]:
    return {"generator": VAE(config, data.shape[0])}


@dataclass(frozen=True)
class ELBOConfig:
    """The negative evidence lower bound, per image: Bernoulli reconstruction + KL(q(z|x) || N(0, I))."""


def elbo(config: ELBOConfig):
    def negative_elbo(logits: torch.Tensor, images: torch.Tensor, mean: torch.Tensor,
                      log_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, reconstruction, KL), each summed over pixels or dimensions and averaged over images."""
        target = (images + 1) / 2  # pixel intensities in [0, 1] as Bernoulli means
        reconstruction = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(images)
        kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum() / len(images)
        return reconstruction + kl, reconstruction, kl

    return negative_elbo


class VAETraining(AdversarialTraining):
    """Adam on the negative ELBO, the same batches, steps and measures as the GAN."""

    panels = (Panel("loss", ("train",), "negative ELBO (nats per image)"),
              Panel("fd_classifier", ("val",), "Fréchet distance (classifier features)"))

    def __init__(self, config: AdversarialTrainingConfig, networks: dict[str, nn.Module], loss, data, ctx):
        self.config, self.loss, self.data, self.ctx = config, loss, data, ctx
        self.G = networks["generator"]
        self.total_steps, self.samples_per_step = config.steps, config.batch_size
        self.modules = {"generator": self.G}
        self.optimizers = {"generator": torch.optim.Adam(self.G.parameters(), config.lr,
                                                         betas=(config.beta1, 0.999))}
        self.quality = SampleQuality(config.measure, data)

    def update(self, step: int) -> dict[str, Any]:
        real = real_images(self.data, step, self.config.batch_size)
        epsilon = noise(mix_seeds(self.ctx.seed, self.ctx.rank, step), len(real), self.G.latent, real.device)
        self.G.train()
        logits, mean, log_var = self.G(real, epsilon)
        loss, reconstruction, kl = self.loss(logits, real, mean, log_var)
        self._step("generator", loss)
        return {"loss": loss.detach(), "reconstruction": reconstruction.detach(), "kl": kl.detach()}


def vae_training(config: AdversarialTrainingConfig, networks, loss, data, ctx: Context) -> VAETraining:
    return VAETraining(config, networks, loss, data, ctx)


def _vae(preset: str) -> dict[str, Component]:
    ours = PRESETS[preset]
    return {"model": Component("conv-vae", vae, ours.model.config),
            "loss": Component("elbo", elbo, ELBOConfig()),
            "algorithm": Component("adam-elbo", vae_training,
                                   dataclasses.replace(ours.algorithm.config, lr=1e-3, beta1=0.9))}


# ================================================================================================
# The claim: at the same budget, the GAN's FID is at most 0.6 x the VAE's and its precision higher.

FID_RATIO = 0.6


def judge(milestone: Milestone, preset: str, results: Mapping[str, list[dict]]) -> Verdict:
    """Mean FID (n samples) of the GAN <= 0.6 x the VAE's, mean precision above the VAE's, and at full
    the GAN's FID at most the threshold; recall is reported, never required."""
    gan, baseline = results.get(milestone.variant) or [], results.get("vae") or []
    if not gan or not baseline:
        return Verdict("not judged", "no runs of " + " and ".join(
            v for v, r in ((milestone.variant, gan), ("vae", baseline)) if not r))
    key = "test_fid" if all("test_fid" in r for r in gan + baseline) else "test_fd_classifier"
    values = {name: [r.get(key, math.nan) for r in runs] for name, runs in (("gan", gan), ("vae", baseline))}
    if any(not math.isfinite(v) for vs in values.values() for v in vs):
        return Verdict.judged(False, f"a run diverged or reported no {key}")
    fid, fid_vae = statistics.mean(values["gan"]), statistics.mean(values["vae"])
    precision = statistics.mean(r["test_precision"] for r in gan)
    precision_vae = statistics.mean(r["test_precision"] for r in baseline)
    n = int(gan[0].get("test_n", 0))
    checks = {f"{key.removeprefix('test_')} {fid:.2f} <= {FID_RATIO} x VAE's {fid_vae:.2f} (n = {n})":
                  fid <= FID_RATIO * fid_vae,
              f"precision {precision:.3f} > VAE's {precision_vae:.3f}": precision > precision_vae}
    threshold = milestone.claim.thresholds.get(preset)
    if threshold is not None and preset == "full":
        checks[f"FID {fid:.2f} <= {threshold}"] = fid <= threshold
    recall = [statistics.mean(r["test_recall"] for r in runs) for runs in (gan, baseline)]
    return Verdict.judged(all(checks.values()),
                          "; ".join(checks) + f"; recall {recall[0]:.3f} vs the VAE's {recall[1]:.3f}")


def figures(comparison, out_dir: Path) -> list[Path]:
    """The loss is a proxy: G's and D's losses beside the Fréchet distance, against images seen."""
    from ..report.figures import logged_curves, plt, save

    m = comparison.milestone
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key, colour in (("loss_d", "C3"), ("loss_g", "C0")):
        steps, values = logged_curves(comparison.results.get(m.variant, []), "train", key)
        if steps:
            left.plot([s * _batch(comparison) for s in steps], [statistics.mean(v) for v in values],
                      color=colour, label=f"GAN {key[-1].upper()} loss")
    left.set(xlabel="images seen", ylabel="loss (nats)", title="what the GAN minimises")
    left.legend()
    for variant, colour in ((m.variant, "C0"), ("vae", "C7")):
        steps, values = logged_curves(comparison.results.get(variant, []), "val", "fd_classifier")
        if steps:
            right.plot([s * _batch(comparison) for s in steps], [statistics.mean(v) for v in values],
                       "o-", color=colour, label=variant)
    right.set(xlabel="images seen", ylabel="Fréchet distance, classifier features", yscale="log",
              title="what we want: samples like the data")
    right.legend()
    fig.suptitle(f"{m.year} {m.title} ({comparison.preset}, {len(comparison.seeds)} seeds)")
    path = out_dir / f"{m.key}.png"
    save(fig, path)
    return [path]


def _batch(comparison) -> int:
    return comparison.milestone.recipe(comparison.preset).algorithm.config.batch_size


# ================================================================================================
# Presets and the milestone.

CPU = Recipe(DATA, MODEL, LOSS, ALGORITHM)
SMOKE = Recipe(
    DATA.with_config(dataclasses.replace(DATA.config, train_size=512, val_size=500, test_size=500,
                                         train_eval_size=500)),
    MODEL.with_config(DCGANConfig(latent=16, width=8)),
    LOSS,
    ALGORITHM.with_config(AdversarialTrainingConfig(
        steps=8, batch_size=32, measure=SampleQualityConfig(samples=64, eval_samples=64, inception=False))))
FULL = Recipe(DATA, MODEL.with_config(DCGANConfig(width=128)), LOSS,
              ALGORITHM.with_config(AdversarialTrainingConfig(
                  steps=50_000, batch_size=128, measure=SampleQualityConfig(samples=10_000))))
PRESETS = {"smoke": SMOKE, "cpu": CPU, "full": FULL}

MILESTONE = Milestone(
    key="gan",
    year=2015,
    title="GAN: a generator against a discriminator",
    citation="Goodfellow et al. Generative Adversarial Nets. NeurIPS 2014; Radford, Metz & Chintala. "
             "Unsupervised Representation Learning with Deep Convolutional GANs. ICLR 2016.",
    url="https://arxiv.org/abs/1511.06434",
    showed="a generator and a discriminator trained against each other produce realistic samples",
    variant="gan",
    presets=PRESETS,
    baselines={"vae": _vae},
    changes=("model", "loss", "algorithm"),
    claim=Claim(
        statement="at the same budget, the DCGAN's FID (n = 2,000) is at most 0.6 x the VAE's and its "
                  "precision is higher",
        metric="test_fid",
        direction="min",
        paper="Lucic et al. 2018, Fashion-MNIST, FID (n = 10k): NS-GAN 26.5, best GAN (WGAN) 21.5, VAE 58.7",
        report=(Metric("test_fid", "FID (Inception)", 2), Metric("test_n", "n", 0),
                Metric("test_precision", "precision", 3), Metric("test_recall", "recall", 3),
                Metric("test_class_coverage", "class coverage (bits)", 3),
                Metric("test_fd_classifier", "FD (classifier)", 3),
                Metric("train_seconds", "training seconds", 1)),
        thresholds={"full": 21.5},
        judge=judge,
        figures=figures,
    ),
    tools=(GENERATE,),
)
