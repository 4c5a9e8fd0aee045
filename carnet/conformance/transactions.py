"""The NIST transactions a test step can play, prepared and checked as the Java engine does.

Every step goes through the same stages (``BasicTransaction.doRun``): the request file is read,
``UseReport`` values are substituted into it, then — for submissions — the ebRIM 2.1 -> 3.0
translation, patient-id forcing, ``UseId`` values, fresh uniqueIds, sourceId and ``AssignUuids``
(:func:`carnet.conformance.prepare.prepare`); the request is sent over HTTP to the actor that
serves the transaction; the answer is checked against ``ExpectedStatus``, ``ExpectedErrorCode``,
``ExpectedErrorMessage``, the ebRS 3.0 schemas, ``ExpectedContents``, ``Assertions`` and, for a
retrieve, the documents themselves. A step that cannot be prepared (a link to a step that did
not run, a missing file) is not run and says why.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from carnet.conformance import client, exclusions, pif
from carnet.conformance.assertions import UnsupportedAssertion, run_assertions
from carnet.conformance.expected import QueryObjects, UnknownCheck, Validator
from carnet.conformance.linkage import (
    LinkageError,
    RunLog,
    StepLog,
    apply_symbols,
    evaluate_report,
    read_file_relative,
    resolve_use_id,
    resolve_use_report,
    target_section,
)
from carnet.conformance.prepare import prepare, standard_symbols
from carnet.conformance.results import StepResult, Verdict
from carnet.conformance.testkit import Testkit
from carnet.conformance.testplan import REPOSITORY_TRANSACTIONS, Instruction, Step, UseId
from carnet.xds import vocabulary as v
from carnet.xml import UnsafeXMLError, parse, qname

ACTIONS = {
    "RegisterTransaction": v.ACTION_ITI42,
    "ProvideAndRegisterTransaction": v.ACTION_ITI41,
    "StoredQueryTransaction": v.ACTION_ITI18,
    "RetrieveTransaction": v.ACTION_ITI43,
    "MuTransaction": v.ACTION_ITI57,
    "RemoveMetadataTransaction": v.ACTION_ITI62,
    "RdTransaction": v.ACTION_ITI86,
}
SUBMISSIONS = frozenset({"RegisterTransaction", "ProvideAndRegisterTransaction", "MuTransaction"})
_PLACEHOLDER = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*\$")
R = f"{{{v.RIM}}}"


class NotRun(Exception):
    """The step cannot be prepared; it is reported as not run with this reason."""


@dataclass
class Patients:
    """The patient ids of a run, fed to the target as they are allocated (NIST orchestration).

    ``register`` (test 15817), ``alternate`` (15817b) and ``stored_query`` (15818) are fed once;
    every test forces its own fresh, fed id on submissions that do not say NoPatientId (so the
    stored-query seed 12346 and 12374 never share a patient with other data); ``unknown`` is
    never fed (AltPatientId, test 11996).
    """

    authority: str
    feed: pif.FeedAddress | None
    fixed: dict[str, str] = field(default_factory=dict)
    _count: int = 0

    def allocate(self) -> str:
        self._count += 1
        token = hashlib.sha1(f"{time.time_ns()}-{self._count}".encode(), usedforsecurity=False).hexdigest()
        return f"CNF{token[:12].upper()}^^^&{self.authority}&ISO"

    def fed(self) -> tuple[str, str]:
        """A new id, fed to the target; returns (id, note)."""
        pid = self.allocate()
        return pid, self.send(pid)

    def send(self, pid: str) -> str:
        if self.feed is None:
            return f"patient {pid} was not fed (no --target-mllp): the target must accept it by other means"
        pif.send(self.feed, pid)
        return f"patient {pid} fed by ITI-8 to {self.feed.host}:{self.feed.port}"

    def role(self, name: str) -> tuple[str, str]:
        """The id of a named role (register, alternate, stored_query, unknown), fed once."""
        if name not in self.fixed:
            pid = self.allocate()
            note = "never fed (unknown to the registry)" if name == "unknown" else self.send(pid)
            self.fixed[name] = pid
            return pid, note
        return self.fixed[name], ""


# The Patient Identity Feed tests and the patient each feeds (the ids a NIST test session
# configures for "registration", its alternate, and "stored query" data).
PIF_ROLES = {"15817": "register", "15817b": "alternate", "15818": "stored_query"}


@dataclass
class TestState:
    """What one test carries from step to step: the patient forced on its submissions.

    A test that names a PIF test (``UseReport test="15818"`` or ``"15817"``) runs, as in a NIST
    test session, with that feed's patient as its own; any other test gets a fresh fed patient,
    so data sets that are counted per patient (12346, 12374) never mix.
    """

    test_id: str
    pif_role: str | None = None
    default_patient: str | None = None


@dataclass
class Context:
    testkit: Testkit
    log: RunLog
    patients: Patients
    registry_url: str
    repository_url: str
    schema: etree.XMLSchema | None


def load_schema(directory: Path | None) -> etree.XMLSchema | None:
    """The toolkit's own ebRS 3.0 / XDS.b schemas, to validate every answer as NIST does."""
    if directory is None:
        return None
    try:
        return etree.XMLSchema(etree.parse(str(directory / "XDS.b_DocumentRepository.xsd")))
    except (etree.XMLSchemaParseError, OSError):
        return None


class StepRunner:
    """Plays one step: prepare, send, check; fills the run log for later steps."""

    def __init__(self, ctx: Context, step: Step, state: TestState):
        self.ctx = ctx
        self.step = step
        self.state = state
        section = step.section
        self.result = StepResult(section.test_id, section.name, step.id, step.kind, Verdict.PASSED)
        self.symbols: dict[str, str] = {}
        self.uuids: dict[str, str] = {}
        self.steplog: StepLog | None = None

    # --- entry ------------------------------------------------------------------------------
    def run(self) -> StepResult:
        started = time.monotonic()
        try:
            self._run()
        except NotRun as exc:
            self.result.verdict = Verdict.NOT_RUN
            self.result.reasons.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - one broken step must not end the run
            # A fault of the runner is no verdict on the target: never passed, never failed.
            self.result.verdict = Verdict.NOT_RUN
            self.result.reasons.append(f"runner error: {type(exc).__name__}: {exc}")
        self.result.seconds = time.monotonic() - started
        return self.result

    def fail(self, reason: str) -> None:
        self.result.verdict = Verdict.FAILED
        self.result.reasons.append(reason)

    def _run(self) -> None:
        step, sec = self.step, self.step.section
        excluded = exclusions.excluded_step(sec.test_id, sec.name, step.id)
        if excluded is not None:
            self.result.verdict = Verdict.EXCLUDED
            self.result.reasons.append(excluded.reason)
            return
        if step.problem:
            raise NotRun(step.problem)
        if step.new_patient_id and step.instruction is None:
            pid, note = self._fed_patient()
            self.state.default_patient = pid
            self.result.notes.append(f"NewPatientId: {note}")
            return
        ins = step.instruction
        assert ins is not None
        if ins.wait_before_ms:
            time.sleep(ins.wait_before_ms / 1000)
        self.steplog = self.ctx.log.new_step(sec.test_id, sec.name, step.id, ins.kind)
        for use in ins.use_reports:
            try:
                self.symbols[use.use_as] = resolve_use_report(use, sec, self.ctx.log)
            except LinkageError as exc:
                raise NotRun(str(exc)) from exc
        if ins.kind == "PatientIdentityFeedTransaction":
            self._feed(ins)
        elif ins.kind == "NullTransaction":
            self._assertions(ins)
        else:
            self._exchange(ins)

    def _fed_patient(self) -> tuple[str, str]:
        try:
            return self.ctx.patients.fed()
        except pif.FeedError as exc:
            raise NotRun(str(exc)) from exc

    def default_patient(self) -> str:
        if self.step.alt_patient_id:
            pid, note = self.ctx.patients.role("unknown")
        elif self.state.default_patient is None:
            if self.state.pif_role is not None:
                try:
                    pid, note = self.ctx.patients.role(self.state.pif_role)
                except pif.FeedError as exc:
                    raise NotRun(str(exc)) from exc
            else:
                pid, note = self._fed_patient()
            self.state.default_patient = pid
        else:
            return self.state.default_patient
        if note:
            self.result.notes.append(note)
        return pid

    # --- ITI-8 --------------------------------------------------------------------------------
    def _feed(self, ins: Instruction) -> None:
        assert self.steplog is not None
        role = PIF_ROLES.get(self.step.section.test_id)
        if ins.create_new_patient_id:
            pid = self.ctx.patients.allocate()
        elif ins.patient_id:
            pid = ins.patient_id
        elif role is not None:
            pid = self.ctx.patients.fixed.setdefault(role, self.ctx.patients.allocate())
        else:
            pid = self.state.default_patient or self.ctx.patients.allocate()
            self.state.default_patient = pid
        self.steplog.record("PatientId", pid)
        # Reported before sending, so later steps can name the id even when no feed is possible.
        self.steplog.report("$patientid$", pid)
        self.result.endpoint = (
            f"mllp://{self.ctx.patients.feed.host}:{self.ctx.patients.feed.port}"
            if self.ctx.patients.feed
            else ""
        )
        self.result.request = pif.a01(pid).replace("\r", "\n")
        if self.ctx.patients.feed is None:
            raise NotRun(
                f"no --target-mllp: patient {pid} was not fed; the target must accept it by other means"
            )
        try:
            self.result.response = pif.send(self.ctx.patients.feed, pid).replace("\r", "\n")
        except pif.FeedError as exc:
            self.fail(str(exc))

    # --- request preparation ----------------------------------------------------------------------
    def _use_ids(self, ins: Instruction) -> dict[str, str]:
        out: dict[str, str] = {}
        for use in ins.use_ids:
            try:
                out[use.symbol] = resolve_use_id(use, self.step.section, self.ctx.testkit, self.ctx.log)
            except LinkageError as exc:
                raise NotRun(str(exc)) from exc
        return out

    def _load(self, ins: Instruction) -> etree._Element:
        if not ins.metadata_file:
            raise NotRun(f"<{ins.kind}> names no MetadataFile")
        path = self.step.section.directory / ins.metadata_file
        if not path.is_file():
            raise NotRun(f"MetadataFile {ins.metadata_file} does not exist in {self.step.section.label}")
        try:
            root = parse(path.read_bytes())
        except UnsafeXMLError as exc:
            raise NotRun(f"MetadataFile {ins.metadata_file} does not parse: {exc}") from exc
        # UseReport values go in first, before the metadata is read (reportManagerPreRun).
        apply_symbols(root, self.symbols)
        return root

    def _prepare(self, ins: Instruction) -> etree._Element:
        assert self.steplog is not None
        root = self._load(ins)
        use_ids = self._use_ids(ins)
        self.symbols.update(use_ids)
        apply_symbols(root, use_ids)
        if ins.kind not in SUBMISSIONS or not ins.parse_metadata:
            apply_symbols(root, standard_symbols(root))
            return root
        patient = None if ins.no_patient_id else self.default_patient()
        # Some repository plans hold a whole ProvideAndRegisterDocumentSetRequest: its
        # SubmitObjectsRequest is the metadata, the documents come from <Document> instructions.
        if root.tag == qname(v.XDSB, "ProvideAndRegisterDocumentSetRequest"):
            inner = root.find(qname(v.LCM, "SubmitObjectsRequest"))
            if inner is None:
                raise NotRun(f"{ins.metadata_file} holds no lcm:SubmitObjectsRequest")
            root = inner
        try:
            prepared = prepare(
                root,
                patient_id=patient,
                assign_uids=ins.assign_uids,
                no_assign=ins.no_assign_uid_to,
                assign_uuids=ins.assign_uuids,
                symbols=use_ids,
            )
        except ValueError as exc:
            raise NotRun(f"metadata cannot be prepared: {exc}") from exc
        log = self.steplog
        log.assign("AssignedPatientId", prepared.assigned_patient_id)
        log.assign("AssignedUids", prepared.assigned_uids)
        log.assign("AssignedUuids", prepared.assigned_uuids)
        log.assign("AssignedSourceId", _source_ids(prepared.request))
        for name, value in prepared.assigned_uids.items():
            log.report(f"{name}_uid", value)
        for name, value in prepared.assigned_uuids.items():
            log.report(f"{name}_uuid", value)
        self.uuids = prepared.assigned_uuids
        return prepared.request

    # --- sending -----------------------------------------------------------------------------------
    def _exchange(self, ins: Instruction) -> None:
        assert self.steplog is not None
        body = self._prepare(ins)
        documents: list[tuple[etree._Element, bytes, str]] = []
        if ins.kind == "ProvideAndRegisterTransaction":
            body, documents = self._provide_and_register(ins, body)
        leftover = sorted(set(_PLACEHOLDER.findall(etree.tostring(body, encoding="unicode"))))
        if leftover:
            self.result.notes.append(
                "sent with unresolved placeholders (as NIST would): " + ", ".join(leftover)
            )
        self.steplog.record("InputMetadata", body)
        url = self.ctx.repository_url if ins.kind in REPOSITORY_TRANSACTIONS else self.ctx.registry_url
        self.result.endpoint = url
        # The body moves into the envelope; the log already holds its copy.
        exchange = client.call(url, ACTIONS[ins.kind], body, documents)
        self.result.request, self.result.response = exchange.request, exchange.response
        if exchange.body is not None:
            self.steplog.record("Result", exchange.body)
        else:
            self.steplog.record("Result", "None")
        self._check(ins, exchange)

    def _provide_and_register(
        self, ins: Instruction, sor: etree._Element
    ) -> tuple[etree._Element, list[tuple[etree._Element, bytes, str]]]:
        request = etree.Element(qname(v.XDSB, "ProvideAndRegisterDocumentSetRequest"), nsmap={"xdsb": v.XDSB})
        request.append(sor)
        mime_of = {eo.get("id"): eo.get("mimeType") or "" for eo in sor.iter(f"{R}ExtrinsicObject")}
        documents: list[tuple[etree._Element, bytes, str]] = []
        for doc_id, filename in ins.documents.items():
            path = read_file_relative(self.step.section, filename)
            if path is None:
                raise NotRun(f"Document file {filename} does not exist in {self.step.section.label}")
            real_id = self.uuids.get(doc_id, doc_id)
            el = etree.SubElement(request, qname(v.XDSB, "Document"), id=real_id)
            documents.append((el, path.read_bytes(), mime_of.get(real_id, "")))
        return request, documents

    # --- checks -----------------------------------------------------------------------------------
    def _check(self, ins: Instruction, exchange: client.Exchange) -> None:
        step = self.step
        expected = step.expected_status or ["Success"]
        if exchange.transport_error:
            self.fail(exchange.transport_error)
            return
        if exchange.fault is not None:
            if "Fault" not in expected:
                self.fail(f"SOAP Fault: {exchange.fault} (expected {' or '.join(expected)})")
            return
        body = exchange.body
        assert body is not None
        rr = body if body.get("status") else body.find(f".//{{{v.RS}}}RegistryResponse")
        status = (rr.get("status") if rr is not None else "") or ""
        status = status.rsplit(":", 1)[-1]
        errors = [
            (e.get("errorCode") or "", e.get("codeContext") or "", e.get("severity") or "")
            for e in body.iter(qname(v.RS, "RegistryError"))
        ]
        codes = [c for c, _, _ in errors]
        if status not in expected:
            listed = "; ".join(f"{c}: {ctx}" for c, ctx, _ in errors)
            self.fail(
                f"status is {status or 'missing'}, expected {' or '.join(expected)}"
                + (f" ({listed})" if listed else "")
            )
        for code in step.expected_error_codes:
            if code not in codes:
                self.fail(f"expected errorCode {code}, got {codes or 'none'}")
        if step.expected_error_message:
            texts = [f"{c} {ctx}" for c, ctx, _ in errors]
            if not any(step.expected_error_message in t for t in texts):
                self.fail(
                    f"expected an error message containing {step.expected_error_message!r}, "
                    f"got {codes or 'none'}"
                )
        if expected == ["Success"]:
            for code, ctx, severity in errors:
                if not severity.endswith("Warning"):
                    self.fail(f"error returned with status Success expected: {code}: {ctx}")
        if self.ctx.schema is not None and not self.ctx.schema.validate(body):
            self.fail(
                "the answer is not valid against the ebRS 3.0 / XDS.b schemas: "
                f"{self.ctx.schema.error_log.last_error}"
            )
        if ins.kind == "StoredQueryTransaction" and ins.expected_contents is not None:
            try:
                problems = Validator(QueryObjects.read(body), self._resolve_use_id).run(ins.expected_contents)
            except UnknownCheck as exc:
                raise NotRun(f"ExpectedContents check <{exc}> is not implemented by this runner") from exc
            for problem in problems:
                self.fail(f"ExpectedContents: {problem}")
        if (
            ins.kind == "RetrieveTransaction"
            and status in ("Success", "PartialSuccess")
            and status in expected
        ):
            self._check_retrieve(ins, body, exchange)
        if ins.assertions is not None:
            self._assertions(ins)
        if self.result.verdict == Verdict.PASSED:
            self._reports(ins)

    def _resolve_use_id(self, use: UseId) -> str:
        try:
            return resolve_use_id(use, self.step.section, self.ctx.testkit, self.ctx.log)
        except LinkageError as exc:
            raise NotRun(str(exc)) from exc

    def _reports(self, ins: Instruction) -> None:
        assert self.steplog is not None
        for spec in ins.reports:
            try:
                self.steplog.report(spec.name, evaluate_report(spec, self.steplog))
            except LinkageError as exc:
                self.fail(str(exc))
        # NIST also reports the run parameters on every step (the extra linkage).
        register = self.ctx.patients.fixed.get("register")
        if register:
            self.steplog.report("$patientid$", register)

    def _assertions(self, ins: Instruction) -> None:
        if ins.assertions is None:
            return
        sec = self.step.section
        substitutions = {**standard_symbols(), **self.symbols}
        try:
            results = run_assertions(
                ins.assertions, self.ctx.log.section_tree(sec.test_id, sec.name), substitutions
            )
        except UnsupportedAssertion as exc:
            raise NotRun(f"Assertions: {exc}") from exc
        for r in results:
            if r.passed:
                self.result.notes.append(f"assertion {r.id} passed")
            else:
                self.fail(f"assertion {r.id} failed: {r.xpath} {r.detail}")

    # --- ITI-43 -------------------------------------------------------------------------------------
    def _check_retrieve(self, ins: Instruction, body: etree._Element, exchange: client.Exchange) -> None:
        request = _find_input(self.steplog)
        wanted = [
            (
                dr.findtext(qname(v.XDSB, "RepositoryUniqueId"), "").strip(),
                dr.findtext(qname(v.XDSB, "DocumentUniqueId"), "").strip(),
            )
            for dr in (request.iter(qname(v.XDSB, "DocumentRequest")) if request is not None else [])
        ]
        got: dict[str, tuple[str, str, bytes]] = {}
        for resp in body.iter(qname(v.XDSB, "DocumentResponse")):
            uid = resp.findtext(qname(v.XDSB, "DocumentUniqueId"), "").strip()
            doc = resp.find(qname(v.XDSB, "Document"))
            data = exchange.documents.get(doc) if doc is not None else None
            if data is None and doc is not None:
                data = base64.b64decode((doc.text or "").encode(), validate=False)
            got[uid] = (
                resp.findtext(qname(v.XDSB, "RepositoryUniqueId"), "").strip(),
                resp.findtext(qname(v.XDSB, "mimeType"), "").strip(),
                data or b"",
            )
        reference = self._reference_metadata(ins)
        references = {}
        sec = self.step.section
        waiver = exclusions.waived(sec.test_id, sec.name, self.step.id, "ReferenceDocument")
        for symbol, filename in ins.reference_documents:
            uid = self.symbols.get(symbol, symbol)
            path = read_file_relative(sec, filename)
            if waiver is not None:
                self.result.notes.append(f"ReferenceDocument {filename} waived: {waiver.reason}")
                continue
            if path is None:
                raise NotRun(f"ReferenceDocument {filename} does not exist in {sec.label}")
            references[uid] = path.read_bytes()
        if self.step.expected_status == ["Success"] and len(got) != len(wanted):
            self.fail(f"requested {len(wanted)} documents, got {len(got)}")
        for repo, uid in wanted:
            if uid not in got:
                if self.step.expected_status == ["Success"]:
                    self.fail(f"no DocumentResponse for document {uid}")
                continue
            got_repo, mime, data = got[uid]
            if got_repo != repo:
                self.fail(f"document {uid}: repositoryUniqueId {got_repo}, requested {repo}")
            sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
            if uid in reference:
                ref_hash, ref_size, ref_mime = reference[uid]
                if ref_hash and ref_hash.lower() != sha1:
                    self.fail(f"document {uid}: hash {sha1}, the registry says {ref_hash}")
                if ref_size and ref_size != str(len(data)):
                    self.fail(f"document {uid}: {len(data)} bytes, the registry says {ref_size}")
                if ref_mime and ref_mime != mime:
                    self.fail(f"document {uid}: mimeType {mime}, the registry says {ref_mime}")
            elif reference:
                self.fail(f"document {uid} is not in the ReferenceMetadata query result")
            if uid in references and references[uid] != data:
                self.fail(f"document {uid}: the retrieved bytes differ from the ReferenceDocument")

    def _reference_metadata(self, ins: Instruction) -> dict[str, tuple[str, str, str]]:
        if ins.reference_metadata is None:
            return {}
        testdir, step_id = ins.reference_metadata
        section = target_section(self.ctx.testkit, self.step.section, testdir)
        found = self.ctx.log.find(section.test_id, section.name, step_id) if section else None
        result = found.output.find("Result") if found is not None else None
        if result is None:
            raise NotRun(f"ReferenceMetadata: step {step_id} of {testdir} has no query result")
        out = {}
        for eo in result.iter(f"{R}ExtrinsicObject"):
            uid = next(
                (
                    e.get("value") or ""
                    for e in eo.findall(f"{R}ExternalIdentifier")
                    if e.get("identificationScheme") == v.DE_UNIQUE_ID
                ),
                "",
            )

            def slot(name: str, eo: etree._Element = eo) -> str:
                return eo.findtext(f"{R}Slot[@name='{name}']/{R}ValueList/{R}Value", "") or ""

            out[uid] = (slot("hash"), slot("size"), eo.get("mimeType") or "")
        return out


def _find_input(steplog: StepLog | None) -> etree._Element | None:
    if steplog is None:
        return None
    inp = steplog.output.find("InputMetadata")
    return inp[0] if inp is not None and len(inp) else None


def _source_ids(request: etree._Element) -> dict[str, str]:
    out = {}
    for pkg in request.iter(f"{R}RegistryPackage"):
        for ei in pkg.findall(f"{R}ExternalIdentifier"):
            if ei.get("identificationScheme") == v.SS_SOURCE_ID:
                out[pkg.get("id") or ""] = ei.get("value") or ""
    return out
