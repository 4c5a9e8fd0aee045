"""The `dmp` validation profile: the DMP's metadata rules on top of the XDS.b ones.

Each rule has a name that starts the codeContext of its XDSRegistryMetadataError, so a sender
sees which rule it broke:

- DMP-VALUESET     a code of classCode (J57), typeCode (J66), formatCode (J60),
                   confidentialityCode (J58), healthcareFacilityTypeCode (J02), practiceSettingCode
                   (J04) or authorSpecialty (J01) is in its value set *with* its coding scheme;
- DMP-CLASS-TYPE   classCode is the class ASS_X16 gives the typeCode;
- DMP-CONFIDENTIALITY  1 to 4 confidentiality codes, and not both INVISIBLE_PATIENT and MASQUE_PS
                   unless the deployment allows it (the DMP parameter
                   cumul-invisible_patient-masque_ps, EX_2.1-1050); the signature document is
                   hidden from everyone by design and may carry both;
- DMP-INS          patientIds are INS (ins.py);
- DMP-REQUIRED     serviceStartTime and legalAuthenticator are present (the DMP's DocumentEntry
                   model makes them 1..1; healthcareFacilityTypeCode and practiceSettingCode are
                   already required by XDS.b itself);
- DMP-REFERENCEID  referenceIdList identifier types are those of J231.

The profile runs on a submission the XDS.b rules accepted, so values are well-formed here.
The parameters (which value set for which attribute, INS authorities, the signature document's
codes) are in profiles/dmp.json.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from carnet.profiles import ins
from carnet.profiles.terminology import ProfileData, ValueSet
from carnet.registry.validate.datatypes import parse_cx
from carnet.xds.errors import ErrorCode, ErrorCollector
from carnet.xds.model import Author, DocumentEntry, Submission

META = ErrorCode.REGISTRY_METADATA_ERROR


class DmpProfile:
    """Callable on a Submission, adding its failures to an ErrorCollector."""

    name = "dmp"

    def __init__(self, data: ProfileData, *, allow_invisible_patient_with_masque_ps: bool = False):
        self.data = data
        self.params: dict[str, Any] = data.dmp
        self.allow_cumul = allow_invisible_patient_with_masque_ps
        bindings = self.params["bindings"]
        self.sets: dict[str, ValueSet] = {attr: data.value_set(vs) for attr, vs in bindings.items()}
        self.type_to_class = data.concept_map(self.params["typeCodeToClassCode"])
        signature = self.params["signatureDocument"]
        self.signature_type = (signature["typeCode"]["code"], signature["typeCode"]["codingScheme"])
        self.signature_format = (signature["formatCode"]["code"], signature["formatCode"]["codingScheme"])

    def __call__(self, sub: Submission, errors: ErrorCollector) -> None:
        if sub.submission_set is not None:
            ss = sub.submission_set
            owner = f"SubmissionSet {ss.entry_uuid}"
            self._ins(errors, owner, ss.patient_id)
            self._authors(errors, owner, ss.authors)
        for de in sub.documents:
            self.check_document_entry(de, errors)
        for fol in sub.folders:
            self._ins(errors, f"Folder {fol.entry_uuid}", fol.patient_id)

    def is_signature(self, de: DocumentEntry) -> bool:
        return (
            de.type_code is not None
            and de.type_code.key() == self.signature_type
            and de.format_code is not None
            and de.format_code.key() == self.signature_format
        )

    def check_document_entry(self, de: DocumentEntry, errors: ErrorCollector) -> None:
        owner = f"DocumentEntry {de.entry_uuid}"
        self._ins(errors, owner, de.patient_id)
        for attr, code in (
            ("classCode", de.class_code),
            ("typeCode", de.type_code),
            ("formatCode", de.format_code),
            ("healthcareFacilityTypeCode", de.healthcare_facility_type_code),
            ("practiceSettingCode", de.practice_setting_code),
        ):
            if code is not None:
                self._in_value_set(errors, owner, attr, code.code, code.scheme)
        for code in de.confidentiality_codes:
            self._in_value_set(errors, owner, "confidentialityCode", code.code, code.scheme)
        self._class_matches_type(errors, owner, de)
        self._confidentiality(errors, owner, de)
        self._authors(errors, owner, de.authors)
        for what, value in (
            ("serviceStartTime", de.service_start_time),
            ("legalAuthenticator", de.legal_authenticator),
        ):
            if not value:
                errors.add(META, f"[DMP-REQUIRED] {owner}: {what} is required by the DMP")
        allowed = self.sets["referenceIdList"]
        for ref in de.reference_ids:
            parts = ref.split("^")
            id_type = parts[4] if len(parts) > 4 else ""
            if not allowed.with_code(id_type):
                errors.add(
                    META,
                    f"[DMP-REFERENCEID] {owner}: referenceIdList type '{id_type}' is not accepted by the "
                    f"DMP ({allowed.label()}: {', '.join(c.code for c in allowed.concepts)})",
                )

    # --- rules -----------------------------------------------------------------------------------

    def _in_value_set(self, errors: ErrorCollector, owner: str, attr: str, code: str, scheme: str) -> None:
        vs = self.sets[attr]
        if (code, scheme) in vs:
            return
        known = vs.with_code(code)
        if known:
            schemes = ", ".join(sorted({c.coding_scheme for c in known}))
            reason = f"is in {vs.label()} only with codingScheme {schemes}"
        else:
            reason = f"is not in {vs.label()}"
        errors.add(META, f"[DMP-VALUESET] {owner}: {attr} '{code}' (codingScheme '{scheme}') {reason}")

    def _class_matches_type(self, errors: ErrorCollector, owner: str, de: DocumentEntry) -> None:
        if de.type_code is None or de.class_code is None:
            return
        classes = self.type_to_class.targets(de.type_code.code, de.type_code.scheme)
        if not classes:
            return  # a typeCode outside J66 is already refused by DMP-VALUESET
        if de.class_code.key() not in {c.key() for c in classes}:
            expected = " or ".join(f"'{c.code}' ({c.coding_scheme})" for c in classes)
            errors.add(
                META,
                f"[DMP-CLASS-TYPE] {owner}: classCode '{de.class_code.code}' does not go with typeCode "
                f"'{de.type_code.code}'; {self.type_to_class.id} gives {expected}",
            )

    def _confidentiality(self, errors: ErrorCollector, owner: str, de: DocumentEntry) -> None:
        rules = self.params["confidentialityCodes"]
        n = len(de.confidentiality_codes)
        if not rules["min"] <= n <= rules["max"]:
            errors.add(
                META,
                f"[DMP-CONFIDENTIALITY] {owner}: {n} confidentialityCodes; the DMP accepts "
                f"{rules['min']} to {rules['max']}",
            )
        keys = {c.key() for c in de.confidentiality_codes}
        both = (rules["invisiblePatient"], rules["scheme"]) in keys and (
            rules["masquePs"],
            rules["scheme"],
        ) in keys
        if both and not self.allow_cumul and not self.is_signature(de):
            errors.add(
                META,
                f"[DMP-CONFIDENTIALITY] {owner}: a document cannot be both {rules['invisiblePatient']} and "
                f"{rules['masquePs']} (set CARNET_DMP_CUMUL_INVISIBLE_PATIENT_MASQUE_PS=1 to allow it)",
            )

    def _ins(self, errors: ErrorCollector, owner: str, patient_id: str) -> None:
        try:
            cx = parse_cx(patient_id)
        except ValueError:
            return  # a malformed CX is the XDS.b rules' error
        authority = self.params["ins"].get(cx.assigning_authority_oid)
        if authority is None:
            known = ", ".join(f"{oid} ({a['name']})" for oid, a in self.params["ins"].items())
            errors.add(
                META,
                f"[DMP-INS] {owner}: patientId '{patient_id}' is not an INS: its assigning authority "
                f"{cx.assigning_authority_oid} is none of {known}",
            )
            return
        problem = ins.check_nir(cx.id, key=authority["key"])
        if problem:
            errors.add(
                META,
                f"[DMP-INS] {owner}: patientId '{patient_id}' is not a valid {authority['name']}: {problem}",
            )

    def _authors(self, errors: ErrorCollector, owner: str, authors: Iterable[Author]) -> None:
        for i, author in enumerate(authors, 1):
            for specialty in author.specialties:
                parts = specialty.split("^")
                code = parts[0]
                scheme = parts[2] if len(parts) > 2 else ""
                if not scheme:
                    errors.add(
                        META,
                        f"[DMP-VALUESET] {owner} author #{i}: authorSpecialty '{specialty}' has no coding "
                        f"scheme (code^displayName^codingScheme)",
                    )
                    continue
                self._in_value_set(errors, f"{owner} author #{i}", "authorSpecialty", code, scheme)
