"""XDS authors, legal authenticators and intended recipients <-> contained FHIR resources.

MHD (ITI TF-3 4.5.1) carries an XDS author as a reference to a *contained* Practitioner,
PractitionerRole, Organization, Patient, RelatedPerson or Device; the Comprehensive Metadata
option requires containment. Writing: an author with a role, a specialty or an institution next to
its person becomes a PractitionerRole pointing at a contained Practitioner and Organization (as
IPF and MobileAccessGateway read it back); a person alone a Practitioner; institutions alone one
Organization each. Reading is the inverse, so FHIR -> XDS -> FHIR keeps the structure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fhir.resources.R4B.contactpoint import ContactPoint
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.relatedperson import RelatedPerson
from fhir.resources.R4B.resource import Resource

from carnet.fhir import datatypes as fdt
from carnet.xds.model import Author

# ---------------------------------------------------------------------------------------------
# XDS -> FHIR
# ---------------------------------------------------------------------------------------------


def practitioner(xcn: str | None, rid: str, telecoms: Sequence[str] = ()) -> Practitioner:
    ident = fdt.xcn_identifier(xcn) if xcn else None
    name = fdt.xcn_name(xcn) if xcn else None
    return Practitioner(
        id=rid,
        identifier=[ident] if ident else None,
        name=[name] if name else None,
        telecom=_telecoms(telecoms),
    )


def _telecoms(values: Sequence[str]) -> list[ContactPoint] | None:
    out = [cp for cp in (fdt.xtn_contact(x) for x in values) if cp is not None]
    return out or None


def author_resources(author: Author, rid: str) -> tuple[list[Resource], list[str]]:
    """One XDS Author -> (contained resources, ids of those the author reference(s) point at)."""
    if author.roles or author.specialties or (author.person and author.institutions):
        contained: list[Resource] = []
        prac_ref = org_ref = None
        if author.person:
            contained.append(practitioner(author.person, f"{rid}-person"))
            prac_ref = Reference(reference=f"#{rid}-person")
        if author.institutions:
            contained.append(fdt.xon_organization(author.institutions[0], f"{rid}-org"))
            org_ref = Reference(reference=f"#{rid}-org")
        role = PractitionerRole(
            id=rid,
            practitioner=prac_ref,
            organization=org_ref,
            code=[fdt.ce_concept(r) for r in author.roles] or None,
            specialty=[fdt.ce_concept(s) for s in author.specialties] or None,
            telecom=_telecoms(author.telecoms),
        )
        return [role, *contained], [rid]
    if author.person or not author.institutions:
        return [practitioner(author.person, rid, author.telecoms)], [rid]
    orgs: list[Resource] = []
    for i, xon in enumerate(author.institutions):
        org = fdt.xon_organization(xon, f"{rid}-{i}" if i else rid)
        if i == 0 and author.telecoms:
            org.telecom = _telecoms(author.telecoms)
        orgs.append(org)
    return orgs, [str(o.id) for o in orgs]


def recipient_resources(value: str, rid: str) -> tuple[list[Resource], str]:
    """intendedRecipient ``XON|XCN|XTN`` -> contained resources and the id the extension points at."""
    xon, xcn, xtn = (value.split("|") + ["", "", ""])[:3]
    telecoms = [xtn] if xtn else []
    if xon and xcn:
        role = PractitionerRole(
            id=rid,
            practitioner=Reference(reference=f"#{rid}-person"),
            organization=Reference(reference=f"#{rid}-org"),
            telecom=_telecoms(telecoms),
        )
        return [role, practitioner(xcn, f"{rid}-person"), fdt.xon_organization(xon, f"{rid}-org")], rid
    if xon:
        org = fdt.xon_organization(xon, rid)
        org.telecom = _telecoms(telecoms)
        return [org], rid
    return [practitioner(xcn or None, rid, telecoms)], rid


# ---------------------------------------------------------------------------------------------
# FHIR -> XDS
# ---------------------------------------------------------------------------------------------


class ActorError(ValueError):
    """A reference that cannot become an XDS author / authenticator / recipient, with the reason."""


Resolver = Callable[[Reference | None], Resource | None]


def contained_resolver(resource: Any) -> Resolver:
    """References ``#id`` to the resource's contained resources; anything else is not contained."""
    by_id = {f"#{c.id}": c for c in (resource.contained or []) if c.id}

    def resolve(ref: Reference | None) -> Resource | None:
        if ref is None or not ref.reference:
            return None
        if not ref.reference.startswith("#"):
            raise ActorError(
                f"reference '{ref.reference}' is not to a contained resource: Comprehensive Metadata (XDS on "
                f"FHIR) carries authors, authenticators and recipients as contained resources "
                f"(the UnContained References Option cannot be used with XDS on FHIR)"
            )
        found = by_id.get(ref.reference)
        if found is None:
            raise ActorError(f"reference '{ref.reference}' names no contained resource")
        return found

    return resolve


def _xtns(points: Sequence[ContactPoint] | None) -> list[str]:
    return [x for x in (fdt.xtn_of(cp) for cp in points or []) if x]


def _device_name(device: Device) -> list[HumanName]:
    names = [n.name for n in (device.deviceName or []) if n.name]
    return [HumanName(family=names[0])] if names else []


def person_xcn(res: Resource, what: str) -> str | None:
    """A person-like resource -> XCN (None when it carries neither identifier nor family name)."""
    if isinstance(res, Practitioner | Patient | RelatedPerson):
        return fdt.xcn_of(list(res.identifier or []), list(res.name or []))
    if isinstance(res, Device):
        return fdt.xcn_of(list(res.identifier or []), _device_name(res))
    raise ActorError(f"{what}: a {res.get_resource_type()} cannot be an XDS person (XCN)")


def author_of(ref: Reference, resolve: Resolver) -> Author:
    res = resolve(ref)
    if res is None:
        raise ActorError("the author reference is empty")
    if isinstance(res, PractitionerRole):
        author = Author()
        prac = resolve(res.practitioner) if res.practitioner else None
        if prac is not None:
            author.person = person_xcn(prac, "PractitionerRole.practitioner")
            author.telecoms += _xtns(getattr(prac, "telecom", None))
        elif res.identifier:
            # The French directory (annuaire ANS) identifies the professional on the role itself (RPPS).
            author.person = fdt.xcn_of(list(res.identifier), None)
        org = resolve(res.organization) if res.organization else None
        if org is not None:
            if not isinstance(org, Organization):
                raise ActorError("PractitionerRole.organization is not an Organization")
            xon = fdt.xon_of(org)
            if xon:
                author.institutions.append(xon)
        author.roles = [x for x in (fdt.ce_of(c) for c in res.code or []) if x]
        author.specialties = [x for x in (fdt.ce_of(c) for c in res.specialty or []) if x]
        author.telecoms += _xtns(res.telecom)
        return author
    if isinstance(res, Organization):
        xon = fdt.xon_of(res)
        if not xon:
            raise ActorError("an Organization author needs a name (XON.1)")
        return Author(institutions=[xon], telecoms=_xtns(res.telecom))
    return Author(person=person_xcn(res, "author"), telecoms=_xtns(getattr(res, "telecom", None)))


def authenticator_of(ref: Reference, resolve: Resolver) -> str | None:
    res = resolve(ref)
    if res is None:
        return None
    if isinstance(res, PractitionerRole):
        prac = resolve(res.practitioner) if res.practitioner else None
        if prac is None:
            raise ActorError("the authenticator PractitionerRole names no practitioner")
        return person_xcn(prac, "authenticator")
    if isinstance(res, Organization):
        raise ActorError(
            "the authenticator is an Organization: XDS legalAuthenticator is a person (XCN); use a "
            "Practitioner or PractitionerRole"
        )
    return person_xcn(res, "authenticator")


def recipient_of(ref: Reference, resolve: Resolver) -> str:
    res = resolve(ref)
    if res is None:
        raise ActorError("the intendedRecipient reference is empty")
    xon = xcn = xtn = ""
    if isinstance(res, PractitionerRole):
        prac = resolve(res.practitioner) if res.practitioner else None
        org = resolve(res.organization) if res.organization else None
        xcn = (person_xcn(prac, "intendedRecipient") or "") if prac is not None else ""
        xon = (fdt.xon_of(org) or "") if isinstance(org, Organization) else ""
        telecoms = _xtns(res.telecom) or _xtns(getattr(prac, "telecom", None))
    elif isinstance(res, Organization):
        xon = fdt.xon_of(res) or ""
        telecoms = _xtns(res.telecom)
    else:
        xcn = person_xcn(res, "intendedRecipient") or ""
        telecoms = _xtns(getattr(res, "telecom", None))
    xtn = telecoms[0] if telecoms else ""
    if not (xon or xcn or xtn):
        raise ActorError("the intendedRecipient carries no name, identifier or telecom")
    return "|".join([xon, xcn, xtn]).rstrip("|")
