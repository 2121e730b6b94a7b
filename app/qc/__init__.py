"""Annotation QC: agreement, bias, session and drift figures of a batch, and its gate (DESIGN.md)."""

from app.qc.canonical import pair_votes
from app.qc.report import compute_qc

__all__ = ["compute_qc", "pair_votes"]
