"""The timeline: one explicit, chronological list of milestones. No registration by import."""

from __future__ import annotations

from .codeversion import code_versions
from .config import shorten
from .errors import UsageError, did_you_mean
from .milestones import adam, alexnet, bert, dqn, gan, gpt, resnet, seq2seq, simclr, transformer
from .spec import Milestone

CATALOGUE: tuple[Milestone, ...] = (
    alexnet.MILESTONE,  # 2012
    dqn.MILESTONE,  # 2013
    seq2seq.MILESTONE,  # 2014
    adam.MILESTONE,  # 2014
    gan.MILESTONE,  # 2015
    resnet.MILESTONE,  # 2015
    transformer.MILESTONE,  # 2017
    bert.MILESTONE,  # 2018
    gpt.MILESTONE,  # 2019
    simclr.MILESTONE,  # 2020
)


def _index(milestones: tuple[Milestone, ...]) -> dict[str, Milestone]:
    index: dict[str, Milestone] = {}
    for m in milestones:
        if m.key in index:
            raise ValueError(f"duplicate milestone key {m.key!r} in the catalogue")
        index[m.key] = m
    years = [m.year for m in milestones]
    if years != sorted(years):
        raise ValueError("the catalogue must be in chronological order")
    return index


BY_KEY = _index(CATALOGUE)
code_versions()  # read the source's versions now, right after importing the code that will run


def get(key: str) -> Milestone:
    """The milestone called ``key``; an unknown name raises a one-line UsageError with suggestions."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise UsageError(f"unknown milestone {shorten(key)!r}{did_you_mean(key, BY_KEY)}; "
                         "'dlhistory list' shows the timeline") from None
