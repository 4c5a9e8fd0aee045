"""The test-plan vocabulary (``testplan.xml``) read into plain objects.

A plan is a list of ``TestStep``s. A step names what it expects (``ExpectedStatus`` — one or
several acceptable values —, ``ExpectedErrorCode``, ``ExpectedErrorMessage``), may switch
patient (``AltPatientId``, ``NewPatientId``) and holds one ``*Transaction`` element whose
children are instructions (NIST ``BasicTransaction.parseBasicInstruction`` and the
transaction's own ``parseInstruction``). An instruction this runner does not implement is kept
in ``unsupported``: the step is then reported as not run, with that reason, and never sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from carnet.conformance.testkit import Section
from carnet.xml import localname, parse

# The transactions this runner can play, with the actor that receives them.
REGISTRY_TRANSACTIONS = frozenset(
    {"RegisterTransaction", "StoredQueryTransaction", "MuTransaction", "RemoveMetadataTransaction"}
)
REPOSITORY_TRANSACTIONS = frozenset({"ProvideAndRegisterTransaction", "RetrieveTransaction", "RdTransaction"})
LOCAL_TRANSACTIONS = frozenset({"NullTransaction", "PatientIdentityFeedTransaction"})
TRANSACTIONS = REGISTRY_TRANSACTIONS | REPOSITORY_TRANSACTIONS | LOCAL_TRANSACTIONS

# Instructions that carry no behaviour for a replay over XDS.b with SOAP 1.2.
_IGNORED = frozenset({"XDSb", "SOAP12", "InteractionSequence", "NoConvert"})


@dataclass(frozen=True)
class UseId:
    """``<UseId testdir id step section symbol/>``: an id another step assigned (AssignedUuids...)."""

    symbol: str
    id: str
    step: str
    section: str
    testdir: str | None


@dataclass(frozen=True)
class UseReport:
    """``<UseReport test section step reportName useAs/>``: a value another step reported."""

    use_as: str
    report_name: str
    step: str
    section: str
    test: str | None


@dataclass(frozen=True)
class ReportSpec:
    """``<Report name section>XPath</Report>``: a value this step reports for later steps."""

    name: str
    section: str
    xpath: str


@dataclass
class Instruction:
    """The ``*Transaction`` element of a step, read."""

    kind: str
    element: etree._Element
    metadata_file: str | None = None
    assign_uuids: bool = False
    assign_uids: bool = True
    no_assign_uid_to: set[str] = field(default_factory=set)
    no_patient_id: bool = False
    parse_metadata: bool = True
    use_ids: list[UseId] = field(default_factory=list)
    use_reports: list[UseReport] = field(default_factory=list)
    reports: list[ReportSpec] = field(default_factory=list)
    documents: dict[str, str] = field(default_factory=dict)
    reference_documents: list[tuple[str, str]] = field(default_factory=list)
    reference_metadata: tuple[str, str] | None = None
    expected_contents: etree._Element | None = None
    assertions: etree._Element | None = None
    wait_before_ms: int = 0
    create_new_patient_id: bool = False
    patient_id: str | None = None
    unsupported: list[str] = field(default_factory=list)


@dataclass
class Step:
    id: str
    section: Section
    expected_status: list[str]
    expected_error_codes: list[str]
    expected_error_message: str | None
    alt_patient_id: bool
    new_patient_id: bool
    goal: str
    instruction: Instruction | None
    problem: str | None = None

    @property
    def kind(self) -> str:
        return self.instruction.kind if self.instruction is not None else "None"


def read_plan(section: Section) -> list[Step]:
    root = parse(section.plan.read_bytes())
    return [_step(el, section) for el in root if isinstance(el.tag, str) and localname(el) == "TestStep"]


def _text(el: etree._Element) -> str:
    return (el.text or "").strip()


def _step(el: etree._Element, section: Section) -> Step:
    step = Step(
        id=el.get("id") or "",
        section=section,
        expected_status=[],
        expected_error_codes=[],
        expected_error_message=None,
        alt_patient_id=False,
        new_patient_id=False,
        goal="",
        instruction=None,
    )
    transactions: list[etree._Element] = []
    for child in el:
        if not isinstance(child.tag, str):
            continue
        name = localname(child)
        if name == "ExpectedStatus":
            # NIST accepts several ExpectedStatus elements, any of which may match.
            step.expected_status += [s for s in _text(child).replace(",", " ").split() if s]
        elif name == "ExpectedErrorCode":
            step.expected_error_codes.append(_text(child))
        elif name == "ExpectedErrorMessage":
            step.expected_error_message = _text(child)
        elif name == "AltPatientId":
            step.alt_patient_id = True
        elif name == "NewPatientId":
            step.new_patient_id = True
        elif name == "Goal":
            step.goal = " ".join(_text(child).split())
        elif name == "Rule":
            continue
        elif name.endswith("Transaction"):
            transactions.append(child)
        else:
            step.problem = f"step instruction <{name}> is not understood by this runner"
    if len(transactions) > 1:
        step.problem = "a step with more than one transaction element"
    elif transactions:
        step.instruction = _instruction(transactions[0])
        if step.instruction.kind not in TRANSACTIONS:
            step.problem = f"<{step.instruction.kind}> is not a transaction this runner plays"
        elif step.instruction.unsupported:
            step.problem = "instruction(s) not understood by this runner: " + ", ".join(
                f"<{u}>" for u in step.instruction.unsupported
            )
    elif not step.new_patient_id:
        step.problem = "the step holds no transaction"
    return step


def _instruction(el: etree._Element) -> Instruction:
    ins = Instruction(kind=localname(el), element=el)
    for child in el:
        if not isinstance(child.tag, str):
            continue
        name = localname(child)
        if name in _IGNORED:
            continue
        if name == "MetadataFile":
            ins.metadata_file = _text(child)
        elif name == "AssignUuids":
            ins.assign_uuids = True
        elif name == "NoAssignUids":
            # <NoAssignUids/> assigns none; <NoAssignUids id="X"/> all but X (BasicTransaction).
            if child.get("id"):
                ins.no_assign_uid_to.add(child.get("id") or "")
            else:
                ins.assign_uids = False
        elif name == "NoPatientId":
            ins.no_patient_id = True
        elif name == "ParseMetadata":
            ins.parse_metadata = _text(child) != "False"
        elif name == "NoMetadata":
            ins.parse_metadata = False
        elif name == "UseId":
            ins.use_ids.append(
                UseId(
                    symbol=child.get("symbol") or "",
                    id=child.get("id") or "",
                    step=child.get("step") or "",
                    section=child.get("section") or "",
                    testdir=child.get("testdir") or None,
                )
            )
        elif name == "UseReport":
            ins.use_reports.append(
                UseReport(
                    use_as=child.get("useAs") or "",
                    report_name=child.get("reportName") or "",
                    step=child.get("step") or "",
                    section=child.get("section") or "None",
                    test=child.get("test") or None,
                )
            )
        elif name == "Report":
            ins.reports.append(ReportSpec(child.get("name") or "", child.get("section") or "", _text(child)))
        elif name == "Document" and ins.kind == "ProvideAndRegisterTransaction":
            ins.documents[child.get("id") or ""] = _text(child)
        elif name == "ReferenceDocument":
            ins.reference_documents.append((child.get("uid") or "", _text(child)))
        elif name == "ReferenceMetadata":
            ins.reference_metadata = (child.get("testdir") or "", child.get("step") or "")
        elif name == "ExpectedContents":
            ins.expected_contents = child
        elif name == "Assertions":
            ins.assertions = child
        elif name == "WaitBefore":
            ins.wait_before_ms = int(_text(child) or "0")
        elif name == "CreateNewPatientId":
            ins.create_new_patient_id = True
        elif name == "PatientID":
            ins.patient_id = _text(child)
        else:
            ins.unsupported.append(name)
    return ins


def section_file(section: Section, name: str) -> Path:
    return section.directory / name
