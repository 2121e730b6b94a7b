"""Choosing the deployment candidate: evaluation campaigns across a checkpoint series (blinded pairwise
tasks, their exports and the judgments that come back), the ratings and intervals computed from them,
the evidence rules approval checks, and the reward-hacking alarms of a policy run."""
