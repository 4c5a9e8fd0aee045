"""Validation profiles: which rules a deployment adds to the XDS.b metadata checks.

``ihe`` is plain XDS.b (ITI TF-3 only); ``dmp`` adds the French DMP's rules (dmp.py). A
deployment picks one with CARNET_VALIDATION_PROFILE. Every submission path calls the same
function after the XDS.b checks: ITI-42 and ITI-41 through ``RegisterOptions.profile``, and any
other path (ITI-57 metadata update, the FHIR ITI-65 facade) by calling ``check_profile``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from carnet.profiles.terminology import DEFAULT_DIR, load
from carnet.xds.errors import ErrorCollector
from carnet.xds.model import Submission

if TYPE_CHECKING:
    from carnet.config import Settings

PROFILES = ("ihe", "dmp")

# What RegisterOptions.profile holds: adds the profile's failures for a submission to ``errors``.
SubmissionProfile = Callable[[Submission, ErrorCollector], None]


def ihe(sub: Submission, errors: ErrorCollector) -> None:
    """Plain XDS.b: nothing beyond the rules carnet.registry.validate already applies."""


@functools.lru_cache(maxsize=16)
def profile(
    name: str, profiles_dir: Path | None = None, *, allow_invisible_patient_with_masque_ps: bool = False
) -> SubmissionProfile:
    if name == "ihe":
        return ihe
    if name == "dmp":
        from carnet.profiles.dmp import DmpProfile

        return DmpProfile(
            load(profiles_dir or DEFAULT_DIR),
            allow_invisible_patient_with_masque_ps=allow_invisible_patient_with_masque_ps,
        )
    raise ValueError(f"unknown validation profile '{name}' (known: {', '.join(PROFILES)})")


def profile_for(settings: Settings) -> SubmissionProfile:
    """The profile the deployment configured."""
    return profile(
        settings.validation_profile,
        settings.profiles_dir,
        allow_invisible_patient_with_masque_ps=settings.dmp_cumul_invisible_patient_masque_ps,
    )


def check_profile(sub: Submission, errors: ErrorCollector, settings: Settings) -> None:
    """Apply the deployment's profile to ``sub`` (for paths that do not go through iti42.register).

    Call it after the XDS.b checks have passed: the profile assumes well-formed values.
    """
    profile_for(settings)(sub, errors)
