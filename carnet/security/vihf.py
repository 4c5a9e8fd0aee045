"""The DMP VIHF (Volet d'Identification des Habilitations et des Fonctions): the attributes an
identity token carries and how they become a Principal.

The same content arrives two ways: as SAML 2.0 attributes of an XUA assertion (``xua``) and as
claims of a bearer JWT (``jwt``, IHE IUA ``extensions.ihe_iua`` plus the DMP-specific
``extensions.dmp_vihf``). Both readers fill ``Claims``; ``Claims.principal`` checks what the DMP
requires and is the only place a token becomes a Principal, so SOAP and FHIR callers are judged
alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from carnet.dmp.ids import canonical
from carnet.security.principal import AccessMode, Kind, Principal

TokenKind = Literal["professional", "patient", "legal_representative"]

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

# XUA (ITI TF-2b 3.40.4.1.2) attribute names, shared with the DMP VIHF.
SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
ORGANIZATION = "urn:oasis:names:tc:xspa:1.0:subject:organization"
ORGANIZATION_ID = "urn:oasis:names:tc:xspa:1.0:subject:organization-id"
# DMP VIHF attribute names.
VIHF_VERSION = "VIHF_Version"
AUTHENTIFICATION_MODE = "Authentification_Mode"
IDENTIFIANT_STRUCTURE = "Identifiant_Structure"
SECTEUR_ACTIVITE = "Secteur_Activite"
RESSOURCE_URN = "Ressource_URN"
# Pro Santé Connect's name for the break-glass / regulation justification; the VIHF has no
# attribute of its own for it, so the DMP tokens Carnet reads carry it under this name.
MODE_ACCES_RAISON = "Mode_Acces_Raison"
LPS_NOM = "LPS_Nom"
LPS_VERSION = "LPS_Version"
LPS_ID = "LPS_ID"
LPS_ID_HOMOLOGATION_DMP = "LPS_ID_HOMOLOGATION_DMP"

VIHF_VERSIONS = ("3.0", "4.0")
AUTHENTICATION_MODES = ("DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE")
# TRE_R248 ModeAcces: the current NOS OID, and the legacy one DRIMbox still sends.
ACCESS_MODE_SYSTEM = "1.2.250.1.213.1.1.4.336"
ACCESS_MODE_SYSTEMS = (ACCESS_MODE_SYSTEM, "1.2.250.1.213.1.1.4.248")
ACCESS_MODES: dict[str, str] = {
    "normal": "Accès normal",
    "bris_de_glace": "Accès en bris de glace",
    "centre_15": "Accès par un centre de régulation médicale",
}
PROFESSION_SYSTEM = "1.2.250.1.71.1.2.7"  # TRE_G15 ProfessionSante
SPECIALTY_SYSTEM = "1.2.250.1.71.4.2.5"  # TRE_R01 EnsembleSavoirFaire
# The VIHF is a professional's token; for the patient and legal representatives (who reach the DMP
# through patient-facing services) Carnet carries the kind of principal as an XUA role in its own
# local code system (docs/dmp.md), as other national XUA profiles do with patient roles.
SUBJECT_KIND_SYSTEM = "1.2.250.1.999.1.5.2"
SUBJECT_KIND_CODES: dict[str, TokenKind] = {
    "PATIENT": "patient",
    "REPRESENTANT_LEGAL": "legal_representative",
}
# TRE_G15 ProfessionSante labels (and the R94/R95 codes of non-PS readers), for messages.
PROFESSION_LABELS: dict[str, str] = {
    "10": "Médecin",
    "21": "Pharmacien",
    "26": "Audioprothésiste",
    "28": "Opticien-Lunetier",
    "31": "Assistant dentaire",
    "32": "Physicien médical",
    "40": "Chirurgien-Dentiste",
    "41": "Assistant de service social",
    "50": "Sage-Femme",
    "60": "Infirmier",
    "69": "Infirmier psychiatrique",
    "70": "Masseur-Kinésithérapeute",
    "80": "Pédicure-Podologue",
    "81": "Orthoprothésiste",
    "86": "Technicien de laboratoire médical",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
    "93": "Psychologue",
    "94": "Ergothérapeute",
    "95": "Diététicien",
    "96": "Psychomotricien",
    "98": "Manipulateur ERM",
}

# WS-Security 1.1 fault subcodes (the XUA X-Service Provider answers a bad token with them).
INVALID_SECURITY = "wsse:InvalidSecurity"
INVALID_SECURITY_TOKEN = "wsse:InvalidSecurityToken"  # noqa: S105 (a fault code, not a secret)
FAILED_AUTHENTICATION = "wsse:FailedAuthentication"


class TokenError(Exception):
    """The token is refused: ``reason`` says why, ``subcode`` is the WS-Security fault code."""

    def __init__(self, reason: str, subcode: str = FAILED_AUTHENTICATION):
        super().__init__(reason)
        self.reason = reason
        self.subcode = subcode


@dataclass(frozen=True)
class Code:
    code: str
    system: str = ""
    display: str = ""


@dataclass
class Claims:
    """What a VIHF carries, whichever token format it came in."""

    subject: str
    kind: TokenKind = "professional"
    subject_name: str | None = None
    roles: list[Code] = field(default_factory=list)
    purpose: Code | None = None
    structure: str | None = None
    authentication_mode: str | None = None
    version: str | None = None
    sector: str | None = None
    patient: str | None = None
    reason: str | None = None
    token_id: str | None = None
    issuer: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # saml:Conditions/saml:OneTimeUse (carnet.security.replay), and when the token stops being
    # acceptable (its NotOnOrAfter, or its IssueInstant plus the server's maximum age).
    one_time_use: bool = False
    expires_at: datetime | None = None

    def principal(self) -> Principal:
        """Check what the DMP requires of this token and make it the request's Principal."""
        if not self.subject.strip():
            raise TokenError("the token names no subject (NameID / sub)", INVALID_SECURITY_TOKEN)
        patient = None
        if self.patient:
            try:
                patient = canonical(self.patient)
            except ValueError as exc:
                raise TokenError(f"resource-id '{self.patient}' is not a patient identifier: {exc}") from exc
        mode = self._access_mode()
        kind: Kind = self.kind
        if self.kind == "professional":
            self._require_professional()
        elif patient is None:
            raise TokenError(f"a {self.kind} token must name the patient (resource-id / person_id)")
        attributes = {
            k: v
            for k, v in (
                ("authentication_mode", self.authentication_mode),
                ("vihf_version", self.version),
                ("secteur_activite", self.sector),
                ("issuer", self.issuer),
            )
            if v
        }
        attributes.update(self.extra)
        return Principal(
            kind=kind,
            id=self.subject.strip(),
            name=self.subject_name,
            role=self.roles[0].code if self.roles else None,
            specialty=self.roles[1].code if len(self.roles) > 1 else None,
            structure=self.structure,
            access_mode=mode,
            purpose=ACCESS_MODES[mode],
            reason=(self.reason or "").strip() or None,
            patient_id=patient,
            token_id=self.token_id,
            attributes=attributes,
        )

    def _access_mode(self) -> AccessMode:
        if self.purpose is None:
            if self.kind == "professional":
                raise TokenError(f"the token has no access mode ({PURPOSE_OF_USE})", INVALID_SECURITY_TOKEN)
            return "normal"
        system = self.purpose.system.removeprefix("urn:oid:")
        if system not in ACCESS_MODE_SYSTEMS:
            raise TokenError(
                f"purpose of use code system '{self.purpose.system}' is not TRE_R248 ModeAcces "
                f"({' or '.join(ACCESS_MODE_SYSTEMS)})"
            )
        code = self.purpose.code
        if code == "normal":
            return "normal"
        if code == "bris_de_glace":
            return "bris_de_glace"
        if code == "centre_15":
            return "centre_15"
        raise TokenError(f"access mode '{code}' is not one of {', '.join(ACCESS_MODES)}")

    def _require_professional(self) -> None:
        missing = [
            name
            for name, value in (
                (ROLE, self.roles and self.roles[0].code),
                (IDENTIFIANT_STRUCTURE, self.structure),
                (AUTHENTIFICATION_MODE, self.authentication_mode),
                (VIHF_VERSION, self.version),
            )
            if not value
        ]
        if missing:
            raise TokenError(
                f"the token lacks required VIHF attributes: {', '.join(missing)}", INVALID_SECURITY_TOKEN
            )
        if self.authentication_mode not in AUTHENTICATION_MODES:
            raise TokenError(
                f"Authentification_Mode '{self.authentication_mode}' is not one of "
                f"{', '.join(AUTHENTICATION_MODES)}"
            )
        if self.version not in VIHF_VERSIONS:
            raise TokenError(f"VIHF_Version '{self.version}' is not supported ({', '.join(VIHF_VERSIONS)})")
