"""The milestones' own subcommands (``translate``, ``play``, ...): they use finished runs and never
change what a run computes, so they are not part of any run's code version."""
