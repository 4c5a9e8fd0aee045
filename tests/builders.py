"""Hand-written XDS.b request bodies for tests (independent of Carnet's own ebRIM renderer)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from carnet.xds import vocabulary as v

_counter = itertools.count(1)
DMP_CONFIDENTIALITY = "1.2.250.1.213.1.1.4.13"
ROOT = f"1.2.250.1.999.2.{int(time.time())}"


def new_oid() -> str:
    return f"{ROOT}.{next(_counter)}"


def patient(n: int = 1) -> str:
    """A synthetic INS-NIR test identity (INS test OID 1.2.250.1.213.1.4.10)."""
    return f"{2_800_000_000_000_00 + n:015d}^^^&1.2.250.1.213.1.4.10&ISO"


def _slot(name: str, *values: str) -> str:
    vals = "".join(f"<rim:Value>{escape(x)}</rim:Value>" for x in values)
    return f"<rim:Slot name={quoteattr(name)}><rim:ValueList>{vals}</rim:ValueList></rim:Slot>"


def _code(scheme_uuid: str, obj: str, code: str, scheme: str, display: str) -> str:
    return (
        f'<rim:Classification classificationScheme="{scheme_uuid}" classifiedObject="{obj}" '
        f'nodeRepresentation={quoteattr(code)} id="cl{next(_counter)}">{_slot("codingScheme", scheme)}'
        f"<rim:Name><rim:LocalizedString value={quoteattr(display)}/></rim:Name></rim:Classification>"
    )


def _ext(scheme_uuid: str, obj: str, value: str, name: str) -> str:
    return (
        f'<rim:ExternalIdentifier identificationScheme="{scheme_uuid}" value={quoteattr(value)} '
        f'id="ei{next(_counter)}" registryObject="{obj}"><rim:Name><rim:LocalizedString value="{name}"/>'
        f"</rim:Name></rim:ExternalIdentifier>"
    )


@dataclass
class Doc:
    id: str
    content: bytes
    mime_type: str = "text/plain"
    unique_id: str = field(default_factory=new_oid)
    hash: str | None = None  # None: left to the repository
    size: int | None = None
    creation_time: str = "20240115103000"
    class_code: tuple[str, str, str] = ("11488-4", "2.16.840.1.113883.6.1", "Compte rendu de consultation")
    confidentiality: tuple[str, str, str] = ("N", "2.16.840.1.113883.5.25", "Normal")
    # DMP masking codes (MASQUE_PS, INVISIBLE_PATIENT...) added to the confidentiality above.
    dmp_confidentiality: tuple[str, ...] = ()
    type_code: tuple[str, str, str] = ("11488-4", "2.16.840.1.113883.6.1", "Compte rendu de consultation")
    author_person: str = "801234567890^MEDECIN^Alice^^^Dr^^^&1.2.250.1.71.4.2.1&ISO"
    repository_unique_id: str | None = None

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.content).hexdigest()


def document_entry(doc: Doc, pid: str) -> str:
    slots = [
        _slot("creationTime", doc.creation_time),
        _slot("languageCode", "fr-FR"),
        _slot("serviceStartTime", "20240115090000"),
        _slot("serviceStopTime", "20240115100000"),
        _slot("sourcePatientId", pid),
        _slot("sourcePatientInfo", "PID-5|TEST^Synthetique^^^", "PID-7|19700101", "PID-8|F"),
    ]
    if doc.hash is not None:
        slots.append(_slot("hash", doc.hash))
    if doc.size is not None:
        slots.append(_slot("size", str(doc.size)))
    if doc.repository_unique_id is not None:
        slots.append(_slot("repositoryUniqueId", doc.repository_unique_id))
    author = (
        f'<rim:Classification classificationScheme="{v.DE_AUTHOR}" classifiedObject="{doc.id}" '
        f'nodeRepresentation="" id="cl{next(_counter)}">'
        f"{_slot('authorPerson', doc.author_person)}"
        f"{_slot('authorInstitution', 'Hopital Test^^^^^&1.2.250.1.71.4.2.2&ISO^^^^123456789')}"
        f"{_slot('authorSpecialty', 'G15_10/SM26^Medecine generale^1.2.250.1.213.1.1.5.1')}"
        f"</rim:Classification>"
    )
    codes = [
        _code(v.DE_CLASS_CODE, doc.id, *doc.class_code),
        _code(v.DE_TYPE_CODE, doc.id, *doc.type_code),
        _code(
            v.DE_FORMAT_CODE,
            doc.id,
            "urn:ihe:iti:xds:2017:mimeTypeSufficient",
            "1.3.6.1.4.1.19376.1.2.3",
            "Format",
        ),
        _code(v.DE_HCFT_CODE, doc.id, "SA01", "1.2.250.1.71.4.2.4", "Etablissement public de sante"),
        _code(
            v.DE_PRACTICE_SETTING_CODE,
            doc.id,
            "ETABLISSEMENT",
            "1.2.250.1.213.1.1.4.9",
            "Etablissement de sante",
        ),
        _code(v.DE_CONFIDENTIALITY_CODE, doc.id, *doc.confidentiality),
        *(_code(v.DE_CONFIDENTIALITY_CODE, doc.id, c, DMP_CONFIDENTIALITY, c)
          for c in doc.dmp_confidentiality),
        _code(v.DE_EVENT_CODE, doc.id, "GENERALISTE", "1.2.250.1.213.1.1.4.2.283", "Generaliste"),
    ]
    return (
        f'<rim:ExtrinsicObject id="{doc.id}" mimeType="{doc.mime_type}" objectType="{v.DE_STABLE}">'
        f'{"".join(slots)}<rim:Name><rim:LocalizedString value="Document {doc.id}"/></rim:Name>'
        f"{author}{''.join(codes)}"
        f"{_ext(v.DE_PATIENT_ID, doc.id, pid, 'XDSDocumentEntry.patientId')}"
        f"{_ext(v.DE_UNIQUE_ID, doc.id, doc.unique_id, 'XDSDocumentEntry.uniqueId')}</rim:ExtrinsicObject>"
    )


def submit_objects_request(
    pid: str, docs: list[Doc], extra: str = "", ss_unique_id: str | None = None
) -> str:
    ss = "SubmissionSet01"
    members = "".join(
        f'<rim:Association id="as{i}" associationType="{v.HAS_MEMBER}" sourceObject="{ss}" '
        f'targetObject="{d.id}">'
        f"{_slot('SubmissionSetStatus', 'Original')}</rim:Association>"
        for i, d in enumerate(docs)
    )
    return (
        f'<lcm:SubmitObjectsRequest xmlns:lcm="{v.LCM}" xmlns:rim="{v.RIM}"><rim:RegistryObjectList>'
        + "".join(document_entry(d, pid) for d in docs)
        + f'<rim:RegistryPackage id="{ss}">{_slot("submissionTime", "20240115110000")}'
        f'<rim:Name><rim:LocalizedString value="Soumission test"/></rim:Name>'
        + _code(v.SS_CONTENT_TYPE_CODE, ss, "04", "1.2.250.1.213.1.1.4.12", "Hospitalisation")
        + _ext(v.SS_UNIQUE_ID, ss, ss_unique_id or new_oid(), "XDSSubmissionSet.uniqueId")
        + _ext(v.SS_SOURCE_ID, ss, "1.2.250.1.999.9", "XDSSubmissionSet.sourceId")
        + _ext(v.SS_PATIENT_ID, ss, pid, "XDSSubmissionSet.patientId")
        + f'</rim:RegistryPackage><rim:Classification id="ssc" classifiedObject="{ss}" '
        f'classificationNode="{v.SS_NODE}"/>{members}{extra}</rim:RegistryObjectList></lcm:SubmitObjectsRequest>'
    )


def provide_and_register(pid: str, docs: list[Doc], inline: bool = True, **kw: object) -> str:
    sor = submit_objects_request(pid, docs, **kw)  # type: ignore[arg-type]
    documents = (
        "".join(
            f'<xdsb:Document id="{d.id}">{base64.b64encode(d.content).decode()}</xdsb:Document>' for d in docs
        )
        if inline
        else ""
    )
    return (
        f'<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="{v.XDSB}">{sor}{documents}'
        f"</xdsb:ProvideAndRegisterDocumentSetRequest>"
    )


def retrieve_request(pairs: list[tuple[str, str]]) -> str:
    reqs = "".join(
        f"<xdsb:DocumentRequest><xdsb:RepositoryUniqueId>{r}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>{d}</xdsb:DocumentUniqueId></xdsb:DocumentRequest>"
        for r, d in pairs
    )
    return f'<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="{v.XDSB}">{reqs}</xdsb:RetrieveDocumentSetRequest>'


def remove_request(*ids: str) -> str:
    """ITI-62 RemoveObjectsRequest naming ``ids``."""
    refs = "".join(f'<rim:ObjectRef id="{i}"/>' for i in ids)
    return (
        f'<lcm:RemoveObjectsRequest xmlns:lcm="{v.LCM}" xmlns:rim="{v.RIM}">'
        f"<rim:ObjectRefList>{refs}</rim:ObjectRefList></lcm:RemoveObjectsRequest>"
    )


def remove_documents(pairs: list[tuple[str, str]]) -> str:
    """ITI-86 RemoveDocumentsRequest of (repositoryUniqueId, documentUniqueId) pairs."""
    reqs = "".join(
        f"<xdsb:DocumentRequest><xdsb:RepositoryUniqueId>{r}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>{d}</xdsb:DocumentUniqueId></xdsb:DocumentRequest>"
        for r, d in pairs
    )
    return (
        f'<rmd:RemoveDocumentsRequest xmlns:rmd="{v.RMD}" xmlns:xdsb="{v.XDSB}">{reqs}'
        f"</rmd:RemoveDocumentsRequest>"
    )
