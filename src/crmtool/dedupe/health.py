"""Is the learnt model about people? A check of EM's weights, not of how many matches it found.

On an export with (almost) no true duplicates, EM still finds a "match" class: the pairs most alike,
which are people who share a name. Such a model learns that its matches disagree on their person
identifiers (email, phone, national id) about as often as random pairs do, so a different NIF or phone
weighs almost nothing against a match. A healthy model on real duplicates weighs such a disagreement
at several bits (a different phone -11, national id -7 on the benchmark's people).

**Criterion.** The model is *degenerate* when it has at least one person-identifier comparison (by its
method, ``email`` or ``phone``, or by its column's role: email, phone, national id) and the
disagreement (``else`` level) of **every** one of them weighs more than :data:`MIN_DISAGREEMENT_BITS`:
``m(else) > u(else) / 2``, the class EM calls matches disagrees on each identifier at least half as
often as random record pairs. One weak identifier (people change phones) does not fire; all of them
collapsing does. Fixed weights are the user's and are not judged, nor is a model EM did not train
(too few pairs per blocking rule: its m are the starting values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmtool.dedupe.model import Model
from crmtool.dedupe.roles import role_of
from crmtool.dedupe.spec import DedupeSpec

#: a person identifier whose disagreement weighs more than this (bits) says little against a match
MIN_DISAGREEMENT_BITS = -1.0
IDENTIFIER_ROLES = ("email", "phone", "national_id")
IDENTIFIER_METHODS = ("email", "phone")


@dataclass(frozen=True)
class ModelCheck:
    """The verdict on a model: degenerate or not, and the identifiers' disagreement weights (bits)."""

    degenerate: bool
    disagreement_bits: dict[str, float]
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"degenerate": self.degenerate, "reason": self.reason,
                "identifier_disagreement_bits": dict(self.disagreement_bits)}

    def warning(self) -> str:
        """The one-line warning a run shows (empty when the model is healthy)."""
        if not self.degenerate:
            return ""
        bits = ", ".join(f"{k} {v:+.1f}" for k, v in self.disagreement_bits.items())
        return (f"model: degenerate weights: a different {'/'.join(self.disagreement_bits)} weighs almost nothing "
                f"against a match ({bits} bits; a healthy model: several bits below 0); EM's 'matches' are "
                "probably people who share a name, not duplicates: check the merges, or set model.estimate: "
                "fixed")


def identifier_comparisons(spec: DedupeSpec) -> list[int]:
    """Indices of the comparisons of person identifiers (email, phone, national id)."""
    return [i for i, c in enumerate(spec.comparisons)
            if c.method in IDENTIFIER_METHODS or role_of(c.column) in IDENTIFIER_ROLES]


def check_model(model: Model, spec: DedupeSpec) -> ModelCheck:
    """Judge ``model`` (trained for ``spec``) by the criterion of this module."""
    names = {spec.comparisons[i].name for i in identifier_comparisons(spec)}
    bits = {c.name: round(c.weights[-1], 2) for c in model.comparisons if c.name in names and c.weights}
    if model.estimate != "em" or model.iterations == 0 or not bits:
        return ModelCheck(False, bits)
    if all(b > MIN_DISAGREEMENT_BITS for b in bits.values()):
        return ModelCheck(True, bits, f"every person identifier's disagreement weighs more than "
                                      f"{MIN_DISAGREEMENT_BITS:+g} bits")
    return ModelCheck(False, bits)
