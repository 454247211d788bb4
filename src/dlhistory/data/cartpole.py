"""CartPole-v1 as batched torch operations: many carts stepped at once, no Python per cart.

The physics are gymnasium's ``CartPoleEnv`` (Barto, Sutton & Anderson 1983, with Florian 2007's
corrected equations), integrated with Euler steps of 0.02 s; an episode terminates when the cart
leaves [-2.4, 2.4] or the pole leans more than 12 degrees, and is truncated at 500 steps (the
``TimeLimit`` of ``gymnasium.make("CartPole-v1")``). Every step gives reward 1, the terminating one
included. The state is kept in float64 as gymnasium keeps it and observed in float32; the tests
check states, rewards, terminations and truncations step for step against gymnasium's CartPole from
the same start. Stepping N carts is a handful of tensor operations, so an agent that acts for a
batch of environments pays Python's overhead once per batch instead of once per cart (the idea of
gymnax and PureJaxRL).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

GRAVITY, CART_MASS, POLE_MASS, HALF_LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS = CART_MASS + POLE_MASS
POLE_MASS_LENGTH = POLE_MASS * HALF_LENGTH
X_LIMIT, THETA_LIMIT = 2.4, 12 * 2 * math.pi / 360
MAX_STEPS = 500
RESET_BOUND = 0.05


class BatchStep(NamedTuple):
    observation: torch.Tensor  # (N, 4) float32: the state after the step (the last one if it ended)
    reward: torch.Tensor  # (N,) float32
    terminated: torch.Tensor  # (N,) bool: the pole fell or the cart left the track
    truncated: torch.Tensor  # (N,) bool: the time limit (true beside terminated on a last-step fall)


class CartPoles:
    """``n`` independent CartPole-v1 environments. ``step`` moves every cart; ``reset`` starts the
    ones asked for afresh (a finished episode is reset by the caller, who still needs its last
    observation for the transition)."""

    def __init__(self, n: int, seed: int):
        if n < 1:
            raise ValueError(f"n {n}: needs at least one environment")
        self.generator = torch.Generator().manual_seed(seed)
        self.state = torch.zeros(n, 4, dtype=torch.float64)  # x, x_dot, theta, theta_dot
        self.steps = torch.zeros(n, dtype=torch.long)
        self.reset()

    @property
    def n(self) -> int:
        return len(self.steps)

    def reset(self, which: torch.Tensor | None = None) -> torch.Tensor:
        """Start the environments where ``which`` (N,) is True (all when None) from a state drawn
        uniformly in [-0.05, 0.05]^4; returns every observation (N, 4)."""
        which = torch.ones(self.n, dtype=torch.bool) if which is None else which
        fresh = torch.rand(self.n, 4, generator=self.generator, dtype=torch.float64)
        fresh = (2 * fresh - 1) * RESET_BOUND
        self.state = torch.where(which[:, None], fresh, self.state)
        self.steps = torch.where(which, 0, self.steps)
        return self.state.float()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What a resumed batch needs to go on exactly: the states, the step counts, the generator."""
        return {"state": self.state.clone(), "steps": self.steps.clone(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.state, self.steps = state["state"].clone(), state["steps"].clone()
        self.generator.set_state(state["generator"])

    def step(self, action: torch.Tensor) -> BatchStep:
        """Push every cart left (action 0) or right (1) for one step of 0.02 s."""
        x, x_dot, theta, theta_dot = self.state.unbind(1)
        force = torch.where(action.bool(), FORCE, -FORCE).to(torch.float64)
        cos, sin = theta.cos(), theta.sin()
        temp = (force + POLE_MASS_LENGTH * theta_dot.square() * sin) / TOTAL_MASS
        theta_acc = (GRAVITY * sin - cos * temp) / (
            HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * cos.square() / TOTAL_MASS))
        x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS
        # Euler: positions move with the old velocities, velocities with the new accelerations.
        self.state = torch.stack((x + TAU * x_dot, x_dot + TAU * x_acc,
                                  theta + TAU * theta_dot, theta_dot + TAU * theta_acc), 1)
        self.steps = self.steps + 1
        x, theta = self.state[:, 0], self.state[:, 2]
        terminated = (x < -X_LIMIT) | (x > X_LIMIT) | (theta < -THETA_LIMIT) | (theta > THETA_LIMIT)
        truncated = self.steps >= MAX_STEPS  # gymnasium's TimeLimit says so whether or not it fell
        return BatchStep(self.state.float(), torch.ones(self.n), terminated, truncated)
