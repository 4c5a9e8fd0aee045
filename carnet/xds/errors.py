"""XDS error codes (ITI TF-3 Table 4.2.4.1-2) and the exception that carries them.

A failure names the IHE code it raises and says, in ``context``, which object and which rule
are at fault, so a sender can fix its message from the RegistryResponse alone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class ErrorCode(enum.StrEnum):
    # Submission (ITI-41/42)
    REGISTRY_METADATA_ERROR = "XDSRegistryMetadataError"
    REPOSITORY_METADATA_ERROR = "XDSRepositoryMetadataError"
    REGISTRY_ERROR = "XDSRegistryError"
    REPOSITORY_ERROR = "XDSRepositoryError"
    REGISTRY_NOT_AVAILABLE = "XDSRegistryNotAvailable"
    REGISTRY_BUSY = "XDSRegistryBusy"
    REPOSITORY_BUSY = "XDSRepositoryBusy"
    REGISTRY_OUT_OF_RESOURCES = "XDSRegistryOutOfResources"
    REPOSITORY_OUT_OF_RESOURCES = "XDSRepositoryOutOfResources"
    REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRegistryDuplicateUniqueIdInMessage"
    REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRepositoryDuplicateUniqueIdInMessage"
    DUPLICATE_UNIQUE_ID_IN_REGISTRY = "XDSDuplicateUniqueIdInRegistry"
    NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
    NON_IDENTICAL_SIZE = "XDSNonIdenticalSize"
    UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
    PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
    MISSING_DOCUMENT = "XDSMissingDocument"
    MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
    EXTRA_METADATA_NOT_SAVED = "XDSExtraMetadataNotSaved"
    DEPRECATED_DOCUMENT = "XDSRegistryDeprecatedDocumentError"
    # Stored query (ITI-18)
    UNKNOWN_STORED_QUERY = "XDSUnknownStoredQuery"
    STORED_QUERY_MISSING_PARAM = "XDSStoredQueryMissingParam"
    STORED_QUERY_PARAM_NUMBER = "XDSStoredQueryParamNumber"
    TOO_MANY_RESULTS = "XDSTooManyResults"
    RESULT_NOT_SINGLE_PATIENT = "XDSResultNotSinglePatient"
    # Retrieve (ITI-43) and Remove Documents (ITI-86)
    UNKNOWN_REPOSITORY_ID = "XDSUnknownRepositoryId"
    DOCUMENT_UNIQUE_ID_ERROR = "XDSDocumentUniqueIdError"
    REMOVE_DOCUMENTS_ERROR = "XDSRemoveDocumentsError"
    # Metadata update (ITI-57)
    METADATA_UPDATE_ERROR = "XDSMetadataUpdateError"
    METADATA_UPDATE_OPERATION_ERROR = "XDSMetadataUpdateOperationError"
    METADATA_VERSION_ERROR = "XDSMetadataVersionError"
    PATIENT_ID_RECONCILIATION_ERROR = "XDSPatientIDReconciliationError"
    # Remove metadata (ITI-62)
    UNRESOLVED_REFERENCE = "UnresolvedReferenceException"
    REFERENCES_EXIST = "ReferencesExistException"
    UNREFERENCED_OBJECT = "XDSUnreferencedObjectException"
    # Access (DMP policy decisions surface with this code in XDS responses)
    LOCAL_POLICY_RESTRICTION = "LocalPolicyRestrictionError"


@dataclass(frozen=True)
class RegistryError:
    """One rs:RegistryError: the code, a context naming the object and the rule, and where."""

    code: ErrorCode | str
    context: str
    location: str = ""
    warning: bool = False


class XDSError(Exception):
    """Raised with one or more RegistryErrors; the transaction answers Failure with all of them."""

    def __init__(self, errors: RegistryError | Iterable[RegistryError]):
        self.errors: list[RegistryError] = [errors] if isinstance(errors, RegistryError) else list(errors)
        super().__init__("; ".join(f"{e.code}: {e.context}" for e in self.errors))

    @classmethod
    def of(cls, code: ErrorCode, context: str, location: str = "") -> XDSError:
        return cls(RegistryError(code, context, location))

    def __iter__(self) -> Iterator[RegistryError]:
        return iter(self.errors)


class ErrorCollector:
    """Collects errors while a request is checked, so one response can list all of them."""

    def __init__(self) -> None:
        self.errors: list[RegistryError] = []
        self.warnings: list[RegistryError] = []

    def add(self, code: ErrorCode, context: str, location: str = "") -> None:
        self.errors.append(RegistryError(code, context, location))

    def warn(self, code: ErrorCode, context: str, location: str = "") -> None:
        self.warnings.append(RegistryError(code, context, location, warning=True))

    def raise_if_any(self) -> None:
        if self.errors:
            raise XDSError(self.errors + self.warnings)

    def __bool__(self) -> bool:
        return bool(self.errors)
