"""Batched CartPole (``dlhistory.data.cartpole``) step for step against gymnasium's CartPole-v1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlhistory.data.cartpole import MAX_STEPS, RESET_BOUND, CartPoles

gymnasium = pytest.importorskip("gymnasium")


def balancing(observation: np.ndarray, rng: np.random.Generator) -> int:
    """A controller that keeps the pole up for hundreds of steps (to reach the time limit), with some
    random actions (to fall now and then)."""
    if rng.random() < 0.1:
        return int(rng.integers(2))
    return int(observation[2] + 0.5 * observation[3] > 0)


@pytest.mark.parametrize("policy", ["random", "balancing"])
def test_states_rewards_and_ends_match_gymnasium(policy):
    rng = np.random.default_rng(0)
    n = 4
    envs = [gymnasium.make("CartPole-v1") for _ in range(n)]
    ours = CartPoles(n, seed=0)
    starts = [env.reset(seed=i)[0] for i, env in enumerate(envs)]
    ours.state = torch.tensor(np.stack([env.unwrapped.state for env in envs]), dtype=torch.float64)
    assert torch.equal(ours.state.float(), torch.tensor(np.stack(starts)))
    episodes, lengths, steps = 0, [], 0
    while episodes < 12 and steps < 3000:
        obs = ours.state.float().numpy()
        actions = [int(rng.integers(2)) if policy == "random" else balancing(o, rng) for o in obs]
        step = ours.step(torch.tensor(actions))
        steps += 1
        ended = []
        for i, env in enumerate(envs):
            observation, reward, terminated, truncated, _ = env.step(actions[i])
            np.testing.assert_allclose(step.observation[i].numpy(), observation, rtol=0, atol=1e-6)
            assert step.reward[i].item() == reward
            assert (bool(step.terminated[i]), bool(step.truncated[i])) == (terminated, truncated)
            if terminated or truncated:
                ended.append(i)
                lengths.append(int(ours.steps[i]))
                episodes += 1
                env.reset(seed=100 + episodes)
        if ended:  # restart those carts from gymnasium's new starting states
            which = torch.zeros(n, dtype=torch.bool)
            which[ended] = True
            ours.reset(which)
            for i in ended:
                ours.state[i] = torch.tensor(envs[i].unwrapped.state, dtype=torch.float64)
    assert episodes >= 12
    if policy == "balancing":
        assert max(lengths) == MAX_STEPS  # the time limit was reached and matched


def test_reset_draws_fresh_starts_only_where_asked_and_reproducibly():
    a, b = CartPoles(64, seed=3), CartPoles(64, seed=3)
    assert torch.equal(a.state, b.state) and a.state.abs().max() <= RESET_BOUND
    for _ in range(5):
        a.step(torch.ones(64, dtype=torch.long))
    moved = a.state.clone()
    which = torch.arange(64) % 2 == 0
    a.reset(which)
    assert torch.equal(a.state[~which], moved[~which]) and a.state[which].abs().max() <= RESET_BOUND
    assert (a.steps[which] == 0).all() and (a.steps[~which] == 5).all()
    assert not torch.equal(a.state[which], b.state[which])  # new draws, not the first ones again
