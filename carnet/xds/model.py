"""The XDS metadata model (ITI TF-3 §4.2.3): plain objects, no wire format.

ITI-41/42 (ebRIM), ITI-65 (FHIR) and simple CDA publication all translate into these objects;
the registry validates and stores them; queries translate them back out. A reader can follow
the domain here without knowing ebRIM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carnet.xds import vocabulary as v


@dataclass
class Code:
    """A coded value: ebRIM Classification (nodeRepresentation + codingScheme slot + Name)."""

    code: str
    scheme: str
    display: str | None = None
    # The ebRIM Classification id, kept so a re-rendered object keeps its ids.
    id: str | None = None

    def key(self) -> tuple[str, str]:
        return (self.code, self.scheme)

    def __str__(self) -> str:  # the ITI-18 query form code^^scheme
        return f"{self.code}^^{self.scheme}"


@dataclass
class Author:
    """An author Classification: person (XCN), institutions (XON), roles, specialties, telecoms (XTN)."""

    person: str | None = None
    institutions: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    telecoms: list[str] = field(default_factory=list)
    id: str | None = None


@dataclass
class RegistryObject:
    """What every top-level registry object has."""

    entry_uuid: str
    status: str = v.APPROVED
    # Metadata Update (ITI-57): lid and VersionInfo; for a first version lid == entry_uuid.
    logical_id: str | None = None
    version: str = "1"
    home_community_id: str | None = None
    title: str | None = None
    comments: str | None = None
    # Slots this model does not name ("extra metadata", ITI TF-3 §4.1.14), kept in order.
    extra_slots: dict[str, list[str]] = field(default_factory=dict)
    # ebRIM ids of ExternalIdentifiers / Classifications, by scheme, so re-rendering is stable.
    ebrim_ids: dict[str, str] = field(default_factory=dict)


@dataclass
class DocumentEntry(RegistryObject):
    unique_id: str = ""
    patient_id: str = ""
    mime_type: str = ""
    object_type: str = v.DE_STABLE
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    confidentiality_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    creation_time: str | None = None
    service_start_time: str | None = None
    service_stop_time: str | None = None
    hash: str | None = None
    size: int | None = None
    repository_unique_id: str | None = None
    uri: str | None = None
    language_code: str | None = None
    source_patient_id: str | None = None
    source_patient_info: list[str] = field(default_factory=list)
    legal_authenticator: str | None = None
    reference_ids: list[str] = field(default_factory=list)
    document_availability: str | None = None
    limited_metadata: bool = False

    @property
    def on_demand(self) -> bool:
        return self.object_type == v.DE_ON_DEMAND


@dataclass
class SubmissionSet(RegistryObject):
    unique_id: str = ""
    source_id: str = ""
    patient_id: str = ""
    submission_time: str | None = None
    content_type_code: Code | None = None
    authors: list[Author] = field(default_factory=list)
    intended_recipients: list[str] = field(default_factory=list)
    limited_metadata: bool = False


@dataclass
class Folder(RegistryObject):
    unique_id: str = ""
    patient_id: str = ""
    codes: list[Code] = field(default_factory=list)
    last_update_time: str | None = None
    limited_metadata: bool = False


@dataclass
class Association(RegistryObject):
    association_type: str = v.HAS_MEMBER
    source: str = ""
    target: str = ""
    # Association documentation (ITI TF-3 4.2.3.4.1): why a relationship was made.
    documentation: list[Code] = field(default_factory=list)

    @property
    def submission_set_status(self) -> str | None:
        values = self.extra_slots.get("SubmissionSetStatus")
        return values[0] if values else None

    @property
    def short_type(self) -> str:
        return self.association_type.rsplit(":", 1)[-1]


@dataclass
class Submission:
    """One SubmitObjectsRequest: what ITI-41, ITI-42 and ITI-65 all become."""

    submission_set: SubmissionSet | None = None
    documents: list[DocumentEntry] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    # ObjectRefs: ids of objects already in the registry that the submission points at.
    object_refs: list[str] = field(default_factory=list)

    def objects(self) -> list[RegistryObject]:
        out: list[RegistryObject] = []
        if self.submission_set:
            out.append(self.submission_set)
        out.extend(self.documents)
        out.extend(self.folders)
        out.extend(self.associations)
        return out
