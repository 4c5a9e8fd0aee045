"""NIST XDS Toolkit register tests (collection ``reg``) replayed against Carnet's registry over SOAP.

Each test mirrors one NIST test plan by hand: the data file of every section is prepared as the
Java engine would (``carnet.conformance.prepare``: NoPatientId, NoAssignUids, AssignUuids, UseId
and UseReport symbols), sent by ITI-42, and the outcome compared with the plan's ExpectedStatus,
ExpectedErrorMessage and ExpectedContents (the named checks of NIST ``Validator.java``, written out
below). Where a plan takes a symbol from a ``Report`` on the input metadata (``docid``, ``ssuid``,
``folid``), we read the same attribute from the prepared request.

The patient ids stand for the NIST PIF tests 15817/15817b: they are registered before each test,
except where a test is about an unknown patient (our settings have ``accept_any_patient=False``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from lxml import etree

from carnet.conformance.ebrim21 import RS21, is_v21, to_v3
from carnet.conformance.prepare import DEFAULT_SOURCE_ID, Prepared, prepare, substitute
from carnet.db import write_transaction
from carnet.registry import patients
from carnet.xds import vocabulary as v
from carnet.xml import parse
from tests.conftest import FIXTURES, NIST_TESTS, needs_fixtures
from tests.xds import QueryAnswer, post, register, response_status

PID = "5c8e2a9b1f3d4e7^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO"  # NIST 15817 style
ALT_PID = "2840575123456^^^&1.2.250.1.213.1.4.10&ISO"  # INS-test style, stands for 15817b
UNKNOWN_PID = "0d1e2f3a4b5c6d7^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO"  # never fed
LCM_XSD = FIXTURES / "nist-testkit/xdstools2/src/main/webapp/toolkitx/schema/v3/lcm.xsd"
META = "XDSRegistryMetadataError"
R = f"{{{v.RIM}}}"


# ---------------------------------------------------------------------------------------------
# Helpers: sending prepared NIST data, reading answers, the Validator.java checks
# ---------------------------------------------------------------------------------------------


@dataclass
class Sent:
    prepared: Prepared
    status: str
    errors: list[tuple[str, str]]

    @property
    def codes(self) -> list[str]:
        return [code for code, _ in self.errors]

    def ok(self) -> Sent:
        assert (self.status, self.errors) == ("Success", []), self.errors
        return self


def load(rel: str) -> etree._Element:
    return parse((NIST_TESTS / rel).read_bytes())


def send(
    client,
    rel: str,
    *,
    patient_id: str | None,
    symbols: Mapping[str, str] | None = None,
    assign_uuids: bool = False,
    assign_uids: bool = True,
    no_assign: frozenset[str] = frozenset(),
) -> Sent:
    prepared = prepare(
        load(rel),
        patient_id=patient_id,
        symbols=dict(symbols or {}),
        assign_uuids=assign_uuids,
        assign_uids=assign_uids,
        no_assign=no_assign,
    )
    status, errors = response_status(register(client, prepared.tostring()))
    return Sent(prepared, status, errors)


def nist_query(client, rel: str, symbols: Mapping[str, str]) -> QueryAnswer:
    """A NIST query.xml with its placeholders substituted, sent as ITI-18."""
    request = load(rel)
    substitute(request, symbols)
    text = etree.tostring(request, encoding="unicode")
    assert not re.search(r"\$\w+\$", text), f"unresolved placeholder in {rel}"
    return QueryAnswer.read(post(client, "/xds/registry", v.ACTION_ITI18, text))


# The Report XPaths of the plans, read on the prepared request (section InputMetadata).
def doc_id(sent: Sent) -> str:
    el = sent.prepared.request.find(f".//{R}ExtrinsicObject")
    assert el is not None
    return el.get("id") or ""


def ext_value(sent: Sent, scheme: str) -> str:
    el = sent.prepared.request.find(f".//{R}ExternalIdentifier[@identificationScheme='{scheme}']")
    assert el is not None
    return el.get("value") or ""


def folder_id(sent: Sent) -> str:
    for pkg in sent.prepared.request.iter(f"{R}RegistryPackage"):
        if pkg.find(f"{R}ExternalIdentifier[@identificationScheme='{v.FOLDER_PATIENT_ID}']") is not None:
            return pkg.get("id") or ""
    raise AssertionError("no Folder in the submission")


def ss_uid(sent: Sent) -> str:
    return ext_value(sent, v.SS_UNIQUE_ID)


def has_assoc(ans: QueryAnswer, source: str | None, target: str | None, atype: str) -> bool:
    return any(
        (a.get("sourceObject"), a.get("targetObject"), a.get("associationType")) == (source, target, atype)
        for a in ans.associations
    )


def counts(ans: QueryAnswer) -> dict[str, int]:
    return {
        "SubmissionSets": len(ans.submission_sets),
        "Associations": len(ans.associations),
        "Documents": len(ans.documents),
        "Folders": len(ans.folders),
    }


def assert_ss_with_docs(ans: QueryAnswer, n: int) -> None:
    """Validator.ss1Doc / ss2Doc: one SS, n documents, n associations, SS HasMember each doc."""
    assert ans.status == "Success", ans.errors
    assert (len(ans.submission_sets), len(ans.documents), len(ans.associations)) == (1, n, n)
    ss = ans.submission_sets[0].get("id")
    for doc in ans.documents:
        assert has_assoc(ans, ss, doc.get("id"), v.HAS_MEMBER)


def assert_ss_with_one_doc_one_fol(ans: QueryAnswer) -> None:
    """Validator.sswithOneDocOneFol: SS->DE, SS->Fol, Fol->DE and SS->(Fol->DE) HasMember."""
    assert ans.status == "Success", ans.errors
    assert counts(ans) == {"SubmissionSets": 1, "Associations": 4, "Documents": 1, "Folders": 1}
    ss, doc, fol = (ans.submission_sets[0].get("id"), ans.documents[0].get("id"), ans.folders[0].get("id"))
    assert has_assoc(ans, ss, doc, v.HAS_MEMBER)
    assert has_assoc(ans, ss, fol, v.HAS_MEMBER)
    fol_doc = [
        a.get("id") for a in ans.associations if (a.get("sourceObject"), a.get("targetObject")) == (fol, doc)
    ]
    assert len(fol_doc) == 1
    assert has_assoc(ans, ss, fol_doc[0], v.HAS_MEMBER)


def doc_statuses(ans: QueryAnswer) -> list[str | None]:
    return [d.get("status") for d in ans.documents]


def slot_values(el: etree._Element, name: str) -> list[str]:
    return [val.text or "" for val in el.iterfind(f"{R}Slot[@name='{name}']/{R}ValueList/{R}Value")]


def sections(test: str) -> list[str]:
    index = NIST_TESTS / test / "index.idx"
    return index.read_text().split() if index.exists() else []


@pytest.fixture
def nist(client, engine):
    """The test client, with the two fed patients (NIST 15817 and 15817b) known to the registry."""
    needs_fixtures("nist-testkit")
    with write_transaction(engine) as session:
        patients.upsert(session, PID)
        patients.upsert(session, ALT_PID)
    return client


# ---------------------------------------------------------------------------------------------
# The library itself: ebRIM 2.1 -> 3.0 and the preparation steps
# ---------------------------------------------------------------------------------------------


def test_every_v21_submission_becomes_schema_valid_v3() -> None:
    """xds_anchors §4.2: every ebRIM 2.1 SubmitObjectsRequest of the testkit translates into a
    SubmitObjectsRequest that the toolkit's own lcm.xsd (ebRS 3.0) accepts."""
    needs_fixtures("nist-testkit")
    schema = etree.XMLSchema(etree.parse(str(LCM_XSD)))
    translated, invalid = 0, {}
    for path in sorted(NIST_TESTS.rglob("*.xml")):
        data = path.read_bytes()
        if not data.strip():  # 12346/metadata.xml is an empty file
            continue
        root = parse(data)
        if not is_v21(root):
            continue
        translated += 1
        if not schema.validate(to_v3(root)):
            invalid[str(path.relative_to(NIST_TESTS))] = str(schema.error_log.last_error)
    assert translated >= 201  # 201 in our fixture subset of the testkit (375 in the whole testkit)
    assert invalid == {}


def test_v3_translation_rules() -> None:
    needs_fixtures("nist-testkit")
    src = load("12346/doc_w_fol/single_doc_w_fol.xml")
    out = to_v3(src)
    assert out.tag == f"{{{v.LCM}}}SubmitObjectsRequest"
    rol = out.find(f"{R}RegistryObjectList")
    assert rol is not None
    assert rol.find(f"{R}ObjectRef") is None  # TranslateToV3 drops them
    assert all(etree.QName(el).namespace == v.RIM for el in rol.iter() if isinstance(el.tag, str))
    assert src.tag == f"{{{RS21}}}SubmitObjectsRequest"  # the input is left alone

    for a in rol.iter(f"{R}Association"):
        assert a.get("id")
        assert a.get("objectType") == v.OBJECT_TYPE_ASSOCIATION
        assert a.get("associationType") == v.HAS_MEMBER
    ss_member = [
        a
        for a in rol.iter(f"{R}Association")
        if (a.get("sourceObject"), a.get("targetObject")) == ("SubmissionSet01", "Document01")
    ]
    assert slot_values(ss_member[0], "SubmissionSetStatus") == ["Original"]
    assert all(c.get("id") for c in rol.iter(f"{R}Classification"))
    for obj in rol:
        for ei in obj.iter(f"{R}ExternalIdentifier"):
            assert ei.get("id") and ei.get("registryObject") == obj.get("id")
    ids = [el.get("id") for el in rol.iter() if el.get("id")]
    assert len(ids) == len(set(ids))

    order = ["Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier"]
    for obj in rol:
        ranks = [order.index(etree.QName(c).localname) for c in obj if etree.QName(c).localname in order]
        assert ranks == sorted(ranks)


def test_v3_short_names_and_dropped_attributes() -> None:
    src = etree.fromstring(
        f'<rs:SubmitObjectsRequest xmlns:rs="{RS21}"><rim:LeafRegistryObjectList xmlns:rim="{v.RIM21}">'
        '<rim:ExtrinsicObject id="D" status="Approved" majorVersion="1" minorVersion="0"/>'
        '<rim:Association sourceObject="N" targetObject="D" associationType="RPLC"/>'
        '<rim:Association sourceObject="N" targetObject="D" associationType="XFRM_RPLC"/>'
        '<rim:Association sourceObject="S" targetObject="N" associationType="HasMember"/>'
        '<rim:Association id="id_1" sourceObject="S" targetObject="D"'
        ' associationType="urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"/>'
        "</rim:LeafRegistryObjectList></rs:SubmitObjectsRequest>"
    )
    rol = to_v3(src)[0]
    de = rol[0]
    assert de.get("status") == v.APPROVED
    assert de.get("majorVersion") is None and de.get("minorVersion") is None
    types = [a.get("associationType") for a in rol.iter(f"{R}Association")]
    assert types == [v.RPLC, v.XFRM_RPLC, v.HAS_MEMBER, v.UPDATE_AVAILABILITY_STATUS]
    # A generated id never collides with one the input already uses.
    assoc_ids = [a.get("id") for a in rol.iter(f"{R}Association")]
    assert len(set(assoc_ids)) == 4 and assoc_ids[3] == "id_1"


def test_prepare_mirrors_basic_transaction() -> None:
    needs_fixtures("nist-testkit")
    src = load("12346/doc_w_fol/single_doc_w_fol.xml")
    out = prepare(src, patient_id=PID, symbols={}, assign_uuids=True)
    req = out.request

    # Patient id forced on the DE, the SS and the Folder; logged per symbolic id.
    pids = {
        ei.get("value")
        for ei in req.iter(f"{R}ExternalIdentifier")
        if ei.get("identificationScheme") in (v.DE_PATIENT_ID, v.SS_PATIENT_ID, v.FOLDER_PATIENT_ID)
    }
    assert pids == {PID}
    assert out.assigned_patient_id == {"Document01": PID, "SubmissionSet01": PID, "Folder": PID}

    # Fresh, distinct OIDs for the three uniqueIds.
    assert set(out.assigned_uids) == {"Document01", "SubmissionSet01", "Folder"}
    assert len(set(out.assigned_uids.values())) == 3
    assert all(uid.startswith("1.2.250.1.999.3.") for uid in out.assigned_uids.values())
    assert ext_value(Sent(out, "", []), v.DE_UNIQUE_ID) == out.assigned_uids["Document01"]

    # AssignUuids: every id is a UUID and every reference follows.
    ids = {el.get("id") for el in req.iter() if el.get("id")}
    assert all(i.startswith("urn:uuid:") for i in ids)
    for attr in ("classifiedObject", "sourceObject", "targetObject", "registryObject"):
        for el in req.iter():
            if el.get(attr):
                assert el.get(attr) in ids, (attr, el.get(attr))
    assert out.uuid("Document01") == doc_id(Sent(out, "", []))


def test_prepare_options() -> None:
    needs_fixtures("nist-testkit")
    # NoPatientId: the $patientid$ placeholders are resolved by the symbol table instead.
    out = prepare(load("11990/submit/single_doc.xml"), patient_id=None, symbols={"$patientid$": ALT_PID})
    assert out.assigned_patient_id == {}
    assert b"$" not in out.tostring()
    assert ALT_PID in {ei.get("value") for ei in out.request.iter(f"{R}ExternalIdentifier")}
    assert not out.assigned_uuids and doc_id(Sent(out, "", [])) == "Document01"

    # NoAssignUids id="Document01": the DE keeps the uniqueId given by UseId.
    out = prepare(
        load("12004/submit/single_doc2.xml"),
        patient_id=None,
        symbols={"$patientid$": PID, "$doc_uid$": "1.2.3.4"},
        no_assign={"Document01"},
    )
    assert set(out.assigned_uids) == {"SubmissionSet01"}
    assert ext_value(Sent(out, "", []), v.DE_UNIQUE_ID) == "1.2.3.4"

    # NoAssignUids: nothing assigned; an explicit sourceId is forced, a placeholder one replaced.
    out = prepare(load("11990/submit/single_doc.xml"), patient_id=PID, symbols={}, assign_uids=False)
    assert out.assigned_uids == {}
    out = prepare(load("11990/submit/single_doc.xml"), patient_id=PID, symbols={}, source_id="1.2.3")
    assert ext_value(Sent(out, "", []), v.SS_SOURCE_ID) == "1.2.3"
    src = load("11990/submit/single_doc.xml")
    for ei in src.iter(f"{{{v.RIM21}}}ExternalIdentifier"):
        if ei.get("identificationScheme") == v.SS_SOURCE_ID:
            ei.set("value", "$sourceid$")
    out = prepare(src, patient_id=PID, symbols={})
    assert ext_value(Sent(out, "", []), v.SS_SOURCE_ID) == DEFAULT_SOURCE_ID


def test_prepare_rejects_a_dangling_symbolic_reference() -> None:
    needs_fixtures("nist-testkit")
    # rplc.xml targets $rplc_doc_uuid$; left unresolved it names no object (IdParser throws too).
    with pytest.raises(ValueError, match="rplc_doc_uuid"):
        prepare(load("12346/rplc/rplc.xml"), patient_id=PID, symbols={}, assign_uuids=True)


# ---------------------------------------------------------------------------------------------
# 12346: the stored-query seed, and 11897 FindDocuments over it
# ---------------------------------------------------------------------------------------------


def load_12346(client) -> dict[str, Sent]:
    """12346 sections in index.idx order: patient forced, AssignUuids; rplc takes the UUID that
    doc_for_rplc assigned to Document01 (UseId section=AssignedUuids)."""
    sent: dict[str, Sent] = {}
    for section, data in [
        ("single_doc", "single_doc.xml"),
        ("doc_w_fol", "single_doc_w_fol.xml"),
        ("two_doc_w_fol", "two_doc_w_fol.xml"),
        ("doc_for_rplc", "single_doc_for_rplc.xml"),
    ]:
        sent[section] = send(client, f"12346/{section}/{data}", patient_id=PID, assign_uuids=True)
    rplc_target = sent["doc_for_rplc"].prepared.assigned_uuids["Document01"]
    sent["rplc"] = send(
        client,
        "12346/rplc/rplc.xml",
        patient_id=PID,
        assign_uuids=True,
        symbols={"$rplc_doc_uuid$": rplc_target},
    )
    return sent


def test_12346_seed_is_accepted(nist) -> None:
    sent = load_12346(nist)
    assert {name: (s.status, s.errors) for name, s in sent.items()} == {
        name: ("Success", []) for name in ["single_doc", "doc_w_fol", "two_doc_w_fol", "doc_for_rplc", "rplc"]
    }
    # The RPLC deprecated DocE (doc_for_rplc) and left DocF Approved.
    ans = nist_query(
        nist,
        "11897/deprecated/query.xml",
        {"$patient_id$": sent["single_doc"].prepared.assigned_patient_id["SubmissionSet01"]},
    )
    assert ans.object_refs == [sent["doc_for_rplc"].prepared.assigned_uuids["Document01"]]


def _query_plan(test_section: str) -> tuple[str, str, str | None, int]:
    """MetadataFile, ExpectedStatus and the single count check of an 11897 plan (kind ``None``:
    no objects at all)."""
    plan = etree.parse(str(NIST_TESTS / test_section / "testplan.xml")).getroot()
    metadata_file = plan.findtext(".//MetadataFile", "").strip()
    status = plan.findtext(".//ExpectedStatus", "").strip()
    contents = plan.find(".//ExpectedContents")
    assert contents is not None and len(contents) == 1
    check = contents[0]
    if check.tag == "None":
        return metadata_file, status, None, 0
    return metadata_file, status, check.tag, int(check.get("count", "-1"))


@pytest.mark.parametrize("section", sections("11897"))
def test_11897_find_documents(nist, section: str) -> None:
    sent = load_12346(nist)
    assert all(s.status == "Success" for s in sent.values())
    metadata_file, status, kind, count = _query_plan(f"11897/{section}")
    pid = sent["single_doc"].prepared.assigned_patient_id["SubmissionSet01"]  # UseId AssignedPatientId
    ans = nist_query(nist, f"11897/{section}/{metadata_file}", {"$patient_id$": pid})
    assert ans.status == status, ans.errors
    found = {"Documents": len(ans.documents), "ObjectRefs": len(ans.object_refs)}
    if kind is None:
        assert found == {"Documents": 0, "ObjectRefs": 0}
    else:
        assert found[kind] == count


# ---------------------------------------------------------------------------------------------
# Positive lifecycle: 11990-11995
# ---------------------------------------------------------------------------------------------


def test_11990_register_one_document(nist) -> None:
    submit = send(nist, "11990/submit/single_doc.xml", patient_id=None, symbols={"$patientid$": PID}).ok()
    ans = nist_query(
        nist, "11990/eval/query.xml", {"$ssuid$": submit.prepared.assigned_uids["SubmissionSet01"]}
    )
    assert_ss_with_docs(ans, 1)
    assert doc_statuses(ans) == [v.APPROVED]  # verify_availabilityStatus


def test_11991_register_two_documents(nist) -> None:
    submit = send(nist, "11991/submit/two_doc.xml", patient_id=None, symbols={"$patientid$": PID}).ok()
    ans = nist_query(
        nist, "11991/eval/query.xml", {"$ssuid$": submit.prepared.assigned_uids["SubmissionSet01"]}
    )
    assert_ss_with_docs(ans, 2)


def test_11992_replace_deprecates_the_original(nist) -> None:
    pid = {"$patientid$": PID}
    submit = send(nist, "11992/submit/metadata.xml", patient_id=None, symbols=pid, assign_uuids=True).ok()
    rplc = send(
        nist, "11992/rplc/metadata.xml", patient_id=None, symbols={**pid, "$rplc_doc_uuid$": doc_id(submit)}
    ).ok()
    original = nist_query(nist, "11992/eval/query1.xml", {"$ssuid$": ss_uid(submit)})
    assert_ss_with_docs(original, 1)
    assert doc_statuses(original) == [v.DEPRECATED]  # DocDep
    new = nist_query(nist, "11992/eval/query2.xml", {"$ssuid$": ss_uid(rplc)})
    assert_ss_with_docs(new, 1)
    assert doc_statuses(new) == [v.APPROVED]  # DocApp


@pytest.mark.parametrize(
    ("test", "kind", "symbol"), [("11993", "apnd", "$apnd_doc_uuid$"), ("11994", "xfrm", "$xfrm_doc_uuid$")]
)
def test_11993_11994_amendment_of_a_replaced_document_fails(nist, test: str, kind: str, symbol: str) -> None:
    """submit twice; RPLC the copy; APND/XFRM the original (Success), then the replaced copy (Failure)."""
    pid = {"$patientid$": PID}
    submit = send(nist, f"{test}/submit/metadata.xml", patient_id=None, symbols=pid, assign_uuids=True).ok()
    copy = send(nist, f"{test}/submit/metadata.xml", patient_id=None, symbols=pid, assign_uuids=True).ok()
    send(
        nist, f"{test}/rplc/metadata.xml", patient_id=None, symbols={**pid, "$rplc_doc_uuid$": doc_id(copy)}
    ).ok()
    amend = send(
        nist, f"{test}/{kind}/metadata.xml", patient_id=None, symbols={**pid, symbol: doc_id(submit)}
    ).ok()
    amend_replaced = send(
        nist, f"{test}/{kind}/metadata.xml", patient_id=None, symbols={**pid, symbol: doc_id(copy)}
    )
    assert amend_replaced.status == "Failure"
    assert "XDSRegistryDeprecatedDocumentError" in amend_replaced.codes

    original = nist_query(nist, f"{test}/eval/query1.xml", {"$ssuid$": ss_uid(submit)})
    assert_ss_with_docs(original, 1)
    assert doc_statuses(original) == [v.APPROVED]
    amendment = nist_query(nist, f"{test}/eval/query2.xml", {"$ssuid$": ss_uid(amend)})
    assert_ss_with_docs(amendment, 1)
    assert doc_statuses(amendment) == [v.APPROVED]
    nothing = nist_query(nist, f"{test}/eval/query3.xml", {"$ssuid$": ss_uid(amend_replaced)})
    assert nothing.status == "Success" and counts(nothing) == dict.fromkeys(counts(nothing), 0)


def test_11995_xfrm_rplc(nist) -> None:
    submit = send(nist, "11995/submit/single_doc.xml", patient_id=PID, assign_uuids=True).ok()
    rplc = send(
        nist,
        "11995/rplc/rplc.xml",
        patient_id=PID,
        assign_uuids=True,
        symbols={"$rplc_doc_uuid$": submit.prepared.assigned_uuids["Document01"]},
    ).ok()
    original = nist_query(
        nist, "11995/eval/query1.xml", {"$ssuid$": submit.prepared.assigned_uids["SubmissionSet01"]}
    )
    assert_ss_with_docs(original, 1)
    assert doc_statuses(original) == [v.DEPRECATED]
    assocs = nist_query(
        nist, "11995/eval/queryAssoc.xml", {"$uuid$": rplc.prepared.assigned_uuids["Document01"]}
    )
    assert assocs.status == "Success"
    xfrm_rplc = [a for a in assocs.associations if a.get("associationType") == v.XFRM_RPLC]
    assert len(xfrm_rplc) == 1  # HasXFRM_RPLC
    assert xfrm_rplc[0].get("targetObject") == submit.prepared.assigned_uuids["Document01"]
    new = nist_query(
        nist, "11995/eval/query2.xml", {"$ssuid$": rplc.prepared.assigned_uids["SubmissionSet01"]}
    )
    assert_ss_with_docs(new, 1)
    assert doc_statuses(new) == [v.APPROVED]


# ---------------------------------------------------------------------------------------------
# Negative submissions (xds_anchors §6)
# ---------------------------------------------------------------------------------------------


def test_11996_unknown_patient(nist) -> None:
    # <AltPatientId/>: the engine forces its alternate id, which no feed announced.
    sent = send(nist, "11996/submit/single_doc.xml", patient_id=UNKNOWN_PID)
    assert sent.status == "Failure"
    assert "XDSUnknownPatientId" in sent.codes


def test_11997_patient_id_does_not_match(nist) -> None:
    sent = send(
        nist,
        "11997/submit/single_doc.xml",
        patient_id=None,
        symbols={"$patientid$": PID, "$altpatientid$": ALT_PID},
    )
    assert sent.status == "Failure"
    assert "XDSPatientIdDoesNotMatch" in sent.codes
    ans = nist_query(nist, "11997/eval/query.xml", {"$doc_uid$": sent.prepared.assigned_uids["Document01"]})
    assert ans.status == "Success"
    assert (ans.documents, ans.object_refs) == ([], [])


@pytest.mark.parametrize("section", sections("11998a"))
def test_11998a_missing_attribute(nist, section: str) -> None:
    sent = send(nist, f"11998a/{section}/single_doc.xml", patient_id=None, symbols={"$patientid$": PID})
    assert sent.status == "Failure"
    assert META in sent.codes


def test_12084_all_or_nothing(nist) -> None:
    sent = send(nist, "12084/submit/two_doc.xml", patient_id=PID, symbols={"$patientid$": PID})
    assert sent.status == "Failure"
    assert META in sent.codes
    ans = nist_query(
        nist, "12084/eval/query.xml", {"$ssuid$": sent.prepared.assigned_uids["SubmissionSet01"]}
    )
    assert ans.status == "Success"
    assert (len(ans.submission_sets), len(ans.documents)) == (0, 0)


def test_12004_document_resubmission(nist) -> None:
    pid = {"$patientid$": PID}
    submit = send(nist, "12004/submit/single_doc.xml", patient_id=None, symbols=pid).ok()
    doc_uid = {**pid, "$doc_uid$": submit.prepared.assigned_uids["Document01"]}
    send(
        nist,
        "12004/submit/single_doc2.xml",
        patient_id=None,
        symbols=doc_uid,
        no_assign=frozenset({"Document01"}),
    ).ok()
    diff_hash = send(
        nist,
        "12004/submit/single_doc3.xml",
        patient_id=None,
        symbols=doc_uid,
        no_assign=frozenset({"Document01"}),
    )
    assert diff_hash.status == "Failure"
    assert "XDSNonIdenticalHash" in diff_hash.codes
    ans = nist_query(nist, "12004/eval/query.xml", doc_uid)
    assert ans.status == "Success"
    assert len(ans.object_refs) == 2


def test_12002_add_to_folder_of_another_patient(nist) -> None:
    create = send(
        nist, "12002/create_folder/fol.xml", patient_id=None, symbols={"$patientid$": PID}, assign_uuids=True
    ).ok()
    add = send(
        nist,
        "12002/add_to_folder/single_doc.xml",
        patient_id=None,
        symbols={"$altpatientid$": ALT_PID, "$Folder$": create.prepared.assigned_uuids["Folder"]},
    )
    assert add.status == "Failure"
    assert "XDSPatientIdDoesNotMatch" in add.codes
    ans = nist_query(nist, "12002/eval/query.xml", {"$uniqueid$": create.prepared.assigned_uids["Folder"]})
    assert ans.status == "Success"
    assert counts(ans) == {"SubmissionSets": 0, "Associations": 0, "Documents": 0, "Folders": 1}


def test_12379_extra_metadata_is_stored_and_returned(nist) -> None:
    sent = send(nist, "12379/support/metadata.xml", patient_id=None, symbols={"$patientid$": PID})
    assert sent.status == "Success"  # issue #265: never Failure, at worst a warning
    ans = nist_query(
        nist, "12379/support/query.xml", {"$ssuid$": sent.prepared.assigned_uids["SubmissionSet01"]}
    )
    assert_ss_with_docs(ans, 1)
    # The three Asserts of verify_by_query.
    assert len(ans.documents[0].findall(f"{R}Slot[@name='urn:nist:extraDESlot']")) == 1
    assert len(ans.submission_sets[0].findall(f"{R}Slot[@name='urn:nist:extraSSSlot']")) == 1
    assert len(ans.associations[0].findall(f"{R}Slot[@name='urn:nist:extraAssocSlot']")) == 1


def test_15806_resubmission_of_assigned_uuids(nist) -> None:
    pid = {"$patientid$": PID}
    submit = send(nist, "15806/submit/single_doc.xml", patient_id=None, symbols=pid, assign_uuids=True).ok()
    query_symbols = {"$ssuid$": submit.prepared.assigned_uids["SubmissionSet01"]}
    assert_ss_with_docs(nist_query(nist, "15806/query/query.xml", query_symbols), 1)
    resubmit = send(
        nist,
        "15806/resubmit/single_doc.xml",
        patient_id=None,
        symbols={**pid, "$deid$": submit.prepared.assigned_uuids["Document01"]},
        assign_uuids=True,
    )
    assert resubmit.status == "Failure"
    assert META in resubmit.codes  # what the NIST simulator (RegRSim) returns for a taken id
    ans = nist_query(nist, "15806/verify/query.xml", query_symbols)
    assert_ss_with_docs(ans, 1)
    assert QueryAnswer.name(ans.documents[0]) == "Physical"  # verify_original


# ---------------------------------------------------------------------------------------------
# Folders: 11999, 12000, 12001, 12326, 12323, 12327
# ---------------------------------------------------------------------------------------------


def test_11999_create_empty_folder(nist) -> None:
    sent = send(
        nist, "11999/submit/metadata.xml", patient_id=None, symbols={"$patientid$": PID}, assign_uuids=True
    ).ok()
    ans = nist_query(nist, "11999/eval/query.xml", {"$ssuid$": ss_uid(sent)})
    assert ans.status == "Success", ans.errors
    # SSwithOneFol, SSApproved
    assert counts(ans) == {"SubmissionSets": 1, "Associations": 1, "Documents": 0, "Folders": 1}
    assert has_assoc(ans, ans.submission_sets[0].get("id"), ans.folders[0].get("id"), v.HAS_MEMBER)
    assert ans.submission_sets[0].get("status") == v.APPROVED


def test_12000_folder_with_initial_document(nist) -> None:
    sent = send(
        nist, "12000/submit/metadata.xml", patient_id=None, symbols={"$patientid$": PID}, assign_uuids=True
    ).ok()
    assert_ss_with_one_doc_one_fol(nist_query(nist, "12000/eval_folder/query.xml", {"$ssuid$": ss_uid(sent)}))
    ans = nist_query(nist, "12000/eval_assoc/query.xml", {"$foluid$": ext_value(sent, v.FOLDER_UNIQUE_ID)})
    assert ans.status == "Success"
    assert counts(ans) == {"SubmissionSets": 0, "Associations": 1, "Documents": 1, "Folders": 1}


@pytest.mark.parametrize("test", ["12001", "12326"])
def test_12001_12326_add_document_to_existing_folder(nist, test: str) -> None:
    """12001 adds a new document to a folder; 12326 adds the document already registered with it."""
    pid = {"$patientid$": PID}
    create = send(
        nist, f"{test}/create_folder/metadata.xml", patient_id=None, symbols=pid, assign_uuids=True
    ).ok()
    symbols = {**pid, "$Folder$": folder_id(create)}
    if test == "12326":
        symbols["$Document$"] = doc_id(create)
    send(nist, f"{test}/add_to_folder/metadata.xml", patient_id=None, symbols=symbols).ok()
    ans = nist_query(nist, f"{test}/eval/query.xml", {"$uniqueid$": ext_value(create, v.FOLDER_UNIQUE_ID)})
    assert ans.status == "Success", ans.errors
    assert counts(ans) == {"SubmissionSets": 0, "Associations": 1, "Documents": 1, "Folders": 1}
    if test == "12326":
        assert ans.documents[0].get("id") == doc_id(create)


def _last_update_time(ans: QueryAnswer) -> str:
    assert len(ans.folders) == 1
    values = slot_values(ans.folders[0], "lastUpdateTime")
    assert len(values) == 1
    return values[0]


def test_12323_folder_last_update_time(nist) -> None:
    pid = {"$patientid$": PID}
    today = {datetime.now(UTC).strftime("%Y%m%d"), datetime.now().strftime("%Y%m%d")}  # $DATE$

    no_time = send(nist, "12323/no_time/metadata.xml", patient_id=None, symbols=pid, assign_uuids=True).ok()
    ans = nist_query(nist, "12323/verify_no_submission_time/query.xml", {"$uuid1$": folder_id(no_time)})
    assert counts(ans) == {"SubmissionSets": 0, "Associations": 0, "Documents": 0, "Folders": 1}
    assert _last_update_time(ans)[:8] in today

    has_time = send(nist, "12323/has_time/metadata.xml", patient_id=None, symbols=pid, assign_uuids=True).ok()
    ans = nist_query(nist, "12323/verify_has_submission_time/query.xml", {"$uuid1$": folder_id(has_time)})
    assert counts(ans) == {"SubmissionSets": 0, "Associations": 0, "Documents": 0, "Folders": 1}
    original_time = _last_update_time(ans)
    assert original_time[:8] in today  # the submitted old date is overwritten

    time.sleep(1.1)  # NIST waits 4 s; one second is the precision of our DTM
    add = send(
        nist,
        "12323/add_to_folder/metadata.xml",
        patient_id=None,
        symbols={**pid, "$folid$": folder_id(has_time)},
        assign_uuids=True,
    ).ok()
    ans = nist_query(nist, "12323/verify_time_updated/query.xml", {"$uuid1$": folder_id(has_time)})
    assert counts(ans) == {"SubmissionSets": 0, "Associations": 1, "Documents": 1, "Folders": 1}
    updated_time = _last_update_time(ans)
    assert updated_time != original_time

    time.sleep(1.1)
    send(
        nist, "12323/rplc/metadata.xml", patient_id=None, symbols={**pid, "$rplc_doc_uuid$": doc_id(add)}
    ).ok()
    ans = nist_query(nist, "12323/verify_time_updated_by_rplc/query.xml", {"$uuid1$": folder_id(has_time)})
    assert counts(ans) == {"SubmissionSets": 0, "Associations": 0, "Documents": 0, "Folders": 1}
    assert updated_time < _last_update_time(ans)


def test_12327_replacement_joins_the_folders_of_the_original(nist) -> None:
    submit = send(
        nist,
        "12327/submit_doc_w_fol/single_doc_w_fol.xml",
        patient_id=None,
        symbols={"$patientid$": PID},
        assign_uuids=True,
    ).ok()
    ans = nist_query(
        nist,
        "12327/verify_submission/query1.xml",
        {"$uniqueid$": submit.prepared.assigned_uids["SubmissionSet01"]},
    )
    assert_ss_with_one_doc_one_fol(ans)
    send(
        nist,
        "12327/rplc/rplc.xml",
        patient_id=None,
        symbols={"$patientid$": PID, "$rplc_doc_uuid$": submit.prepared.assigned_uuids["Document01"]},
    ).ok()
    ans = nist_query(
        nist,
        "12327/verify_folder_contents/query2.xml",
        {"$uniqueid$": submit.prepared.assigned_uids["Folder"]},
    )
    assert ans.status == "Success", ans.errors
    assert counts(ans) == {"SubmissionSets": 0, "Associations": 2, "Documents": 2, "Folders": 1}
