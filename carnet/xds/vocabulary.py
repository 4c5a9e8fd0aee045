"""Namespaces, UUIDs and URNs of XDS.b metadata (ITI TF-3 §4.2.5), in one place.

Every other module names these constants instead of repeating the strings.
"""

from __future__ import annotations

# --- XML namespaces -------------------------------------------------------------------------
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
XOP = "http://www.w3.org/2004/08/xop/include"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RIM21 = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
RMD = "urn:ihe:iti:rmd:2017"
XDSB = "urn:ihe:iti:xds-b:2007"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

NSMAP = {"rim": RIM, "lcm": LCM, "rs": RS, "query": QUERY, "xdsb": XDSB}

# --- SOAP actions ---------------------------------------------------------------------------
ACTION_ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ACTION_ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ACTION_ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ACTION_ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
ACTION_ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
# ITI TF-2b 3.62.4.1.2 (and the IHE/IPF WSDL): DeleteDocumentSet, not an ebRS LifeCycleManager action.
ACTION_ITI62 = "urn:ihe:iti:2010:DeleteDocumentSet"
ACTION_ITI86 = "urn:ihe:iti:2017:RemoveDocuments"

# --- Status values --------------------------------------------------------------------------
STATUS_PREFIX = "urn:oasis:names:tc:ebxml-regrep:StatusType:"
APPROVED = STATUS_PREFIX + "Approved"
DEPRECATED = STATUS_PREFIX + "Deprecated"
SUBMITTED = STATUS_PREFIX + "Submitted"
# The DMP adds two availability statuses (CI-SIS, ITI-57 in the DMP context).
DMP_ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"
DMP_DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"

RESPONSE_STATUS_PREFIX = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:"
SUCCESS = RESPONSE_STATUS_PREFIX + "Success"
FAILURE = RESPONSE_STATUS_PREFIX + "Failure"
PARTIAL_SUCCESS = RESPONSE_STATUS_PREFIX + "PartialSuccess"
SEVERITY_ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
SEVERITY_WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

# --- Object types ---------------------------------------------------------------------------
DE_STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DE_ON_DEMAND = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
OBJECT_TYPE_REGISTRY_PACKAGE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
OBJECT_TYPE_ASSOCIATION = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"
OBJECT_TYPE_CLASSIFICATION = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
OBJECT_TYPE_EXTERNAL_ID = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"

# --- DocumentEntry classification schemes and identifiers -----------------------------------
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY_CODE = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_EVENT_CODE = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DE_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_HCFT_CODE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING_CODE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_LIMITED_METADATA = "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"

# --- SubmissionSet ----------------------------------------------------------------------------
SS_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE_CODE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_LIMITED_METADATA = "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"

# --- Folder -----------------------------------------------------------------------------------
FOLDER_NODE = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
FOLDER_CODE_LIST = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
FOLDER_LIMITED_METADATA = "urn:uuid:2c144a76-29a9-4b7c-af54-b25409fe7d03"
FOLDER_PATIENT_ID = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
FOLDER_UNIQUE_ID = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"

# --- Association types ------------------------------------------------------------------------
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
APND = "urn:ihe:iti:2007:AssociationType:APND"
XFRM_RPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
IS_SNAPSHOT_OF = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
SUBMIT_ASSOCIATION = "urn:ihe:iti:2010:AssociationType:SubmitAssociation"
# classificationScheme of the optional documentation code on a relationship association.
ASSOCIATION_DOCUMENTATION = "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3"

DOCUMENT_RELATIONSHIPS = frozenset({RPLC, XFRM, APND, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF})
REPLACEMENTS = frozenset({RPLC, XFRM_RPLC})
ASSOCIATION_TYPES = DOCUMENT_RELATIONSHIPS | {HAS_MEMBER, UPDATE_AVAILABILITY_STATUS, SUBMIT_ASSOCIATION}

# Short names accepted in $AssociationTypes and from ebRIM 2.1 senders.
ASSOCIATION_SHORT_NAMES = {t.rsplit(":", 1)[1]: t for t in ASSOCIATION_TYPES}

# --- Names (for the Name child of ExternalIdentifiers, as senders and NIST expect) ------------
EXTERNAL_ID_NAMES = {
    DE_PATIENT_ID: "XDSDocumentEntry.patientId",
    DE_UNIQUE_ID: "XDSDocumentEntry.uniqueId",
    SS_PATIENT_ID: "XDSSubmissionSet.patientId",
    SS_SOURCE_ID: "XDSSubmissionSet.sourceId",
    SS_UNIQUE_ID: "XDSSubmissionSet.uniqueId",
    FOLDER_PATIENT_ID: "XDSFolder.patientId",
    FOLDER_UNIQUE_ID: "XDSFolder.uniqueId",
}
