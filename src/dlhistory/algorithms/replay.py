"""Experience replay: a memory that stores every frame once (one stream of Atari frames), and one of
whole transitions for small states written by many environments at once (:class:`TransitionMemory`).

DQN (Mnih et al. 2013, 2015) learns from random mini-batches of past transitions (s, a, r, s') drawn
from a replay memory, which breaks the correlation between consecutive steps and reuses each
experience many times (Lin 1992). An Atari state is a stack of the last 4 frames, so storing s and s'
as stacks would keep every frame 8 times: 1M transitions x 2 x 4 x 84 x 84 bytes = 56 GB (26 GB with
the stacks' shared frames dropped from s'). This memory keeps each frame once, in a circular array,
and rebuilds stacks by index when it samples: 1M frames are 7.06 GB.

Layout: slot ``i`` holds a frame and, when a transition starts from it, that transition's action,
reward and terminal flag; its next frame is slot ``i + 1``. An episode is written as its first frame
(:meth:`ReplayMemory.start`), then one slot per step (:meth:`ReplayMemory.add`), so the episode's
final frame is stored too (a time-limit cut needs it: the value after it still counts) and no
transition starts from it. ``position[i]`` counts the frames since the episode began; a stack never
reaches back past the episode's first frame, which fills the older places instead (as the agent saw it:
Baselines' ``FrameStack`` starts an episode with copies of its first frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

SLOT_FIELDS = {"actions": np.int16, "rewards": np.float32, "terminals": bool, "has_next": bool,
               "position": np.uint8}
"""What each slot holds besides its frame: the transition starting there (action, reward, terminal),
whether one does (``has_next``: its next frame is in the following slot), and ``position``, the frames
since the episode's first, capped at stack - 1 (all a stack needs to know)."""
_ARRAYS = ("frames", *SLOT_FIELDS)


@dataclass
class Transitions:
    """A mini-batch: states (B, stack, *frame), actions, rewards, terminals and next states."""

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    terminals: torch.Tensor
    next_states: torch.Tensor

    def to(self, device: torch.device) -> Transitions:
        return Transitions(*(t.to(device, non_blocking=True) for t in (
            self.states, self.actions, self.rewards, self.terminals, self.next_states)))


class ReplayMemory:
    """A circular memory of ``capacity`` frames that samples stacked transitions uniformly."""

    def __init__(self, capacity: int, frame_shape: tuple[int, ...], frame_dtype, stack: int = 4):
        if capacity <= stack + 1:
            raise ValueError(f"a replay memory needs more than {stack + 1} slots")
        self.capacity, self.stack = capacity, stack
        # np.zeros maps untouched pages lazily: memory is committed only as frames arrive.
        self.frames = np.zeros((capacity, *frame_shape), dtype=frame_dtype)
        for name, dtype in SLOT_FIELDS.items():  # actions, rewards, terminals, has_next, position
            setattr(self, name, np.zeros(capacity, dtype=dtype))
        self.written = 0
        """Frames written so far; the newest is at slot (written - 1) % capacity."""
        self.count = 0
        """Transitions held (slots with ``has_next``)."""

    @staticmethod
    def nbytes_for(capacity: int, frame_shape: tuple[int, ...], frame_dtype) -> int:
        """Bytes a memory of ``capacity`` frames holds when full (frames plus 9 bytes per slot)."""
        per_slot = np.prod(frame_shape) * np.dtype(frame_dtype).itemsize
        return int(capacity * (per_slot + sum(np.dtype(d).itemsize for d in SLOT_FIELDS.values())))

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in _ARRAYS)

    def __len__(self) -> int:
        """Transitions held: the frames less one per episode (a few near the oldest are not sampled)."""
        return self.count

    # --- writing ---------------------------------------------------------------------------------

    def start(self, frame: np.ndarray) -> None:
        """Write the first frame of an episode."""
        self._write(frame, position=0)

    def add(self, action: int, reward: float, terminal: bool, next_frame: np.ndarray) -> None:
        """Record the transition from the newest frame: the action, its reward, and the frame after it."""
        last = (self.written - 1) % self.capacity
        self.actions[last], self.rewards[last], self.terminals[last] = action, reward, terminal
        self._write(next_frame, position=min(int(self.position[last]) + 1, self.stack - 1))
        self.has_next[last] = True
        self.count += 1

    def _write(self, frame: np.ndarray, position: int) -> None:
        slot = self.written % self.capacity
        if self.written >= self.capacity and self.has_next[slot]:
            self.count -= 1  # the oldest transition is overwritten
        self.frames[slot] = frame
        self.position[slot] = position
        self.has_next[slot] = False
        self.written += 1

    # --- reading ---------------------------------------------------------------------------------

    def stack_indices(self, slots: np.ndarray) -> np.ndarray:
        """(N, stack) slots of the frames in the states ending at ``slots``, oldest first.

        Places before the episode's first frame repeat that frame.
        """
        back = np.minimum(np.arange(self.stack - 1, -1, -1)[None, :], self.position[slots][:, None])
        return (slots[:, None] - back) % self.capacity

    def state(self, slot: int | None = None) -> np.ndarray:
        """The stacked state ending at ``slot`` (default: the newest frame), shape (stack, *frame)."""
        slot = (self.written - 1) % self.capacity if slot is None else slot
        return self.frames[self.stack_indices(np.array([slot]))[0]]

    def valid(self, slots: np.ndarray) -> np.ndarray:
        """Which slots start a transition whose stacks hold no overwritten frame."""
        size = min(self.written, self.capacity)
        age = (self.written - 1 - slots) % self.capacity  # 0: the newest frame
        return self.has_next[slots] & (age + self.position[slots] <= size - 1)

    def sample(self, n: int, rng: np.random.Generator) -> Transitions:
        """``n`` transitions drawn uniformly (with replacement) from the valid ones."""
        if len(self) == 0:
            raise ValueError("the replay memory holds no transition yet")
        size = min(self.written, self.capacity)
        slots = rng.integers(0, size, n)
        bad = ~self.valid(slots)
        while bad.any():  # rejection: invalid slots are a handful in millions, so this rarely loops
            slots[bad] = rng.integers(0, size, int(bad.sum()))
            bad = ~self.valid(slots)
        return self.transitions(slots)

    def transitions(self, slots: np.ndarray) -> Transitions:
        states = self.frames[self.stack_indices(slots)]
        next_states = self.frames[self.stack_indices((slots + 1) % self.capacity)]
        return Transitions(torch.from_numpy(states), torch.from_numpy(self.actions[slots].astype(np.int64)),
                           torch.from_numpy(self.rewards[slots]), torch.from_numpy(self.terminals[slots]),
                           torch.from_numpy(next_states))

    # --- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The slots written so far (an exact resume needs the memory as it was)."""
        size = min(self.written, self.capacity)
        arrays = {name: torch.from_numpy(getattr(self, name)[:size].copy()) for name in _ARRAYS}
        return {**arrays, "written": self.written, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in _ARRAYS:
            values = state[name].numpy()
            getattr(self, name)[: len(values)] = values
        self.written, self.count = int(state["written"]), int(state["count"])


class TransitionMemory:
    """A circular memory of whole transitions (s, a, r, terminal, s'), written a batch at a time from
    many environments acting in lockstep. For small states (CartPole's four numbers): storing s' beside
    s costs 16 bytes, and each transition stands alone, so interleaved episodes need no bookkeeping
    (ReplayMemory's frames-once layout follows one episode stream)."""

    _FIELDS = ("states", "actions", "rewards", "terminals", "next_states")

    def __init__(self, capacity: int, state_shape: tuple[int, ...]):
        if capacity < 1:
            raise ValueError("a replay memory needs at least one slot")
        self.capacity = capacity
        self.states = torch.zeros(capacity, 1, *state_shape)  # (slot, stack of 1, *state)
        self.next_states = torch.zeros_like(self.states)
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.terminals = torch.zeros(capacity, dtype=torch.bool)
        self.written = 0

    def __len__(self) -> int:
        return min(self.written, self.capacity)

    def add(self, states: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor,
            next_states: torch.Tensor) -> None:
        """Write N transitions (states (N, *state), the rest (N,)), overwriting the oldest when full."""
        slots = torch.arange(self.written, self.written + len(actions)) % self.capacity
        self.states[slots, 0], self.next_states[slots, 0] = states, next_states
        self.actions[slots], self.rewards[slots], self.terminals[slots] = actions, rewards, terminals
        self.written += len(actions)

    def sample(self, n: int, rng: np.random.Generator) -> Transitions:
        """``n`` transitions drawn uniformly (with replacement)."""
        if len(self) == 0:
            raise ValueError("the replay memory holds no transition yet")
        slots = torch.from_numpy(rng.integers(0, len(self), n))
        return Transitions(*(getattr(self, name)[slots] for name in self._FIELDS))

    def state_dict(self) -> dict[str, Any]:
        return {**{name: getattr(self, name)[: len(self)].clone() for name in self._FIELDS},
                "written": self.written}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._FIELDS:
            getattr(self, name)[: len(state[name])] = state[name]
        self.written = int(state["written"])

