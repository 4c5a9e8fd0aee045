"""The principal every request runs as: who, in which role, in which access mode, for what.

Identity tokens (XUA/VIHF SAML, FHIR bearer JWT) are resolved into this one shape, so the policy
decision point and the audit trail see SOAP and FHIR callers alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# A legal representative (parent of a minor, guardian) acts for the patient but may be kept from
# documents marked INVISIBLE_REPRESENTANTS_LEGAUX.
Kind = Literal["professional", "structure", "patient", "legal_representative", "system", "anonymous"]
AccessMode = Literal["normal", "bris_de_glace", "centre_15"]


@dataclass(frozen=True)
class Principal:
    kind: Kind
    id: str
    name: str | None = None
    # Profession / role code (e.g. the DMP's G15_10 for a physician) and specialty.
    role: str | None = None
    specialty: str | None = None
    structure: str | None = None
    access_mode: AccessMode = "normal"
    purpose: str | None = None
    # Justification given for a bris_de_glace / centre_15 access (VIHF/PSC Mode_Acces_Raison).
    reason: str | None = None
    # Patient the token is scoped to (VIHF resource-id), if any.
    patient_id: str | None = None
    token_id: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    # The verified SAML assertion as received (XML), so that Carnet calling another actor on the
    # caller's behalf (a stand-alone repository's ITI-42) presents the caller, as XUA propagates it.
    # Never written to the audit trail.
    credential: str | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        return f"{self.kind}:{self.id}" + (f" ({self.role})" if self.role else "")


ANONYMOUS = Principal(kind="anonymous", id="anonymous", name="anonymous (CARNET_ALLOW_ANONYMOUS)")


def system(name: str) -> Principal:
    """Carnet acting on its own behalf (ITI-8 feed, CLI administration, internal forwarding)."""
    return Principal(kind="system", id=name, name=name)
