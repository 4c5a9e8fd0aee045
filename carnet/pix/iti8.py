"""ITI-8 Patient Identity Feed (HL7 v2.3.1 / v2.5 ADT): the registry's side, as a Document Registry.

The feed makes patient ids known to the registry, which accepts documents only for known,
unmerged ids (see :mod:`carnet.registry.patients`):

* ``ADT^A01`` (admit), ``A04`` (register), ``A05`` (pre-admit) create the patient, or update
  it when already known, so a replayed message succeeds; ``A08`` (update information) updates
  it, creating it if the registry never heard of it.
* ``ADT^A40`` (merge patient, structure ADT_A39) merges the id of MRG-1 into the id of PID-3.
  One message may carry several PID/MRG pairs; they are applied together or not at all.

The patient id is chosen among the PID-3 repetitions: a registry in an XDS affinity domain keeps
only the id assigned by the affinity domain, the one whose assigning authority (CX.4) is
``&<OID>&ISO``. When ``settings.affinity_domain_oid`` is set, only that OID is accepted (the
INS-NIR, 1.2.250.1.213.1.4.8, in a DMP-like deployment); otherwise the first repetition with an
ISO OID is taken. The id is stored in the canonical ``ID^^^&OID&ISO`` form the registry compares.

Each message is applied in one write transaction together with its audit record; a refused or
failed message is audited on its own with outcome 8. The answer is always an original-mode
acknowledgement: ``AA``, ``AE`` (content error, e.g. no usable PID-3) or ``AR`` (unsupported
message type or event), with an ERR segment coded from HL7 table 0357.

Patient ids and names are health data: they are never logged, only message ids and outcomes.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carnet.config import Settings
from carnet.db import write_transaction
from carnet.pix import hl7v2
from carnet.pix.hl7v2 import HL7Error, Location, Message, Segment
from carnet.registry import patients
from carnet.registry.patients import Demographics
from carnet.registry.validate.datatypes import CX, check_oid, normalize_cx, parse_cx
from carnet.security import audit
from carnet.security.principal import system

__all__ = ["SUPPORTED_EVENTS", "handle"]

log = logging.getLogger(__name__)

TRANSACTION = "ITI-8"

# Trigger event -> message structures (MSH-9.3) accepted with it. A05 is ADT_A05 from v2.4 on
# and ADT_A01 in v2.3.1, so both are accepted.
SUPPORTED_EVENTS: dict[str, frozenset[str]] = {
    "A01": frozenset({"ADT_A01"}),
    "A04": frozenset({"ADT_A01"}),
    "A05": frozenset({"ADT_A01", "ADT_A05"}),
    "A08": frozenset({"ADT_A01"}),
    "A40": frozenset({"ADT_A39"}),
}

# Audit action per event: the DICOM Patient Record event is C(reate) or U(pdate).
_ACTIONS: dict[str, Literal["C", "R", "U", "D", "E"]] = {
    "A01": "C",
    "A04": "C",
    "A05": "C",
    "A08": "U",
    "A40": "U",
}

# HL7 table 0001, Administrative Sex.
_SEX_CODES = frozenset({"M", "F", "U", "A", "N", "O"})

_NAME_MAX = 256  # patient.family_name / given_name columns
_PID_MAX = 256  # patient.patient_id column
_TS = re.compile(r"(\d{4}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,4})?)?)?)?)?)?)([+-]\d{4})?")
_HL7_NULL = '""'

# A unique-key race (two feeds creating the same new patient at once on PostgreSQL) is retried
# once: the second attempt finds the row the other transaction committed.
_ATTEMPTS = 2


@dataclass
class _Plan:
    """What one message asks for, read and checked before any database write."""

    trigger: str
    patient_id: str
    demographics: Demographics
    # (surviving, subsumed) pairs of an A40, in message order.
    merges: list[tuple[str, str]] = field(default_factory=list)


def handle(
    engine: Engine,
    message: bytes | str,
    settings: Settings | None = None,
    *,
    source_address: str | None = None,
) -> str:
    """Process one ITI-8 message and return its acknowledgement (ER7 text, CR-separated).

    ``message`` may be bytes (decoded with its MSH-18 character set) or text. Never raises for
    a bad message: every outcome is an ACK, and every outcome is audited.
    """
    parsed: Message | None = None
    event = audit.AuditEvent(
        TRANSACTION, audit.EVENT_PATIENT_RECORD, "E", system("iti8:unknown"), source_address=source_address
    )
    try:
        text = hl7v2.decode(bytes(message)) if isinstance(message, bytes | bytearray) else message
        parsed = hl7v2.parse(text)
        event = _audit_event(parsed, source_address)
        trigger = _check_header(parsed)
        plan = _plan(parsed, trigger, _domain_oid(settings))
        event.patient_id = plan.patient_id
        event.objects += [
            {"type": "Patient", "id": subsumed, "role": "subsumed"} for _, subsumed in plan.merges
        ]
        note = _commit(engine, plan, event)
        log.info("ITI-8 %s %s from %s: AA", trigger, parsed.control_id, event.principal.id)
        return hl7v2.build_ack(parsed, "AA", text=note).to_er7()
    except HL7Error as exc:
        header = parsed or exc.header
        if header is not None and parsed is None:
            event = _audit_event(header, source_address)
        _audit_failure(engine, event, exc)
        log.info(
            "ITI-8 %s %s from %s: %s %s",
            header.trigger_event if header else "?",
            header.control_id if header else "?",
            event.principal.id,
            exc.ack_code,
            exc.code,
        )
        return hl7v2.build_ack(header, exc.ack_code, text=exc.text, error=exc).to_er7()
    except Exception as exc:  # a database or programming error must still be acknowledged
        log.exception("ITI-8 message %s could not be processed", parsed.control_id if parsed else "?")
        error = HL7Error(hl7v2.APPLICATION_INTERNAL_ERROR, f"internal error: {type(exc).__name__}")
        _audit_failure(engine, event, error)
        return hl7v2.build_ack(parsed, "AE", text=error.text, error=error).to_er7()


def _audit_event(msg: Message, source_address: str | None) -> audit.AuditEvent:
    trigger = msg.trigger_event
    # MSH-3 is an HD: its namespace id names the application, else its universal id.
    app = msg.get("MSH-3.1") or msg.get("MSH-3.2") or "unknown"
    return audit.AuditEvent(
        TRANSACTION,
        audit.EVENT_PATIENT_RECORD,
        _ACTIONS.get(trigger, "E"),
        system(f"iti8:{app}"),
        source_address=source_address,
        objects=[{"type": "HL7Message", "id": msg.control_id}],
        detail=trigger or None,
    )


def _audit_failure(engine: Engine, event: audit.AuditEvent, error: HL7Error) -> None:
    event.outcome = audit.SERIOUS_FAILURE
    event.detail = f"{event.detail or '?'}: {error.code} {error.text}"[:4000]
    # audit.record logs its own failure; the sender must still get its ACK.
    with contextlib.suppress(Exception):
        audit.record(engine, event)


def _domain_oid(settings: Settings | None) -> str | None:
    # Settings has no such field yet; read it when a deployment adds one, else take any ISO OID.
    oid = settings.affinity_domain_oid if settings is not None else None
    if not oid:
        return None
    problem = check_oid(str(oid))
    if problem:
        raise ValueError(f"affinity_domain_oid setting: {problem}")
    return str(oid)


def _check_header(msg: Message) -> str:
    """The trigger event, once MSH-9 and MSH-12 say this is a message the feed takes."""
    kind, trigger, structure = msg.message_type, msg.trigger_event, msg.structure
    if not kind:
        raise HL7Error(
            hl7v2.REQUIRED_FIELD_MISSING,
            "MSH-9 (message type) is required",
            ack_code="AR",
            location=Location("MSH", 1, 9, component=1),
        )
    if kind != "ADT":
        raise HL7Error(
            hl7v2.UNSUPPORTED_MESSAGE_TYPE,
            f"message type {kind!r} is not supported: ITI-8 takes ADT messages",
            ack_code="AR",
            location=Location("MSH", 1, 9, component=1),
        )
    if not trigger:
        raise HL7Error(
            hl7v2.REQUIRED_FIELD_MISSING,
            "MSH-9.2 (trigger event) is required",
            ack_code="AR",
            location=Location("MSH", 1, 9, component=2),
        )
    if trigger not in SUPPORTED_EVENTS:
        raise HL7Error(
            hl7v2.UNSUPPORTED_EVENT_CODE,
            f"event ADT^{trigger} is not supported: expected one of {', '.join(SUPPORTED_EVENTS)}",
            ack_code="AR",
            location=Location("MSH", 1, 9, component=2),
        )
    if structure and structure not in SUPPORTED_EVENTS[trigger]:
        raise HL7Error(
            hl7v2.UNSUPPORTED_MESSAGE_TYPE,
            f"message structure {structure!r} does not match ADT^{trigger} "
            f"(expected {' or '.join(sorted(SUPPORTED_EVENTS[trigger]))})",
            ack_code="AR",
            location=Location("MSH", 1, 9, component=3),
        )
    version = msg.version
    if not version:
        raise HL7Error(
            hl7v2.REQUIRED_FIELD_MISSING,
            "MSH-12 (version id) is required",
            ack_code="AR",
            location=Location("MSH", 1, 12),
        )
    if not version.startswith("2."):
        raise HL7Error(
            hl7v2.UNSUPPORTED_VERSION_ID,
            f"HL7 version {version!r} is not supported: ITI-8 uses v2.3.1 or v2.5",
            ack_code="AR",
            location=Location("MSH", 1, 12),
        )
    return trigger


def _plan(msg: Message, trigger: str, domain_oid: str | None) -> _Plan:
    if trigger == "A40":
        return _plan_merge(msg, domain_oid)
    pid = msg.segment("PID")
    if pid is None:
        raise HL7Error(
            hl7v2.SEGMENT_SEQUENCE_ERROR, f"ADT^{trigger} needs a PID segment", location=Location("PID")
        )
    patient_id = _pick_id(pid, 1, 3, domain_oid)
    return _Plan(trigger, str(patient_id), _demographics(pid))


def _plan_merge(msg: Message, domain_oid: str | None) -> _Plan:
    """A40: each PID (surviving id) is followed by its MRG (subsumed id), as in ADT_A39."""
    pairs: list[tuple[Segment, int, Segment, int]] = []
    pending: tuple[Segment, int] | None = None
    pid_count = mrg_count = 0
    for seg in msg.segments[1:]:
        if seg.name == "PID":
            pid_count += 1
            if pending is not None:
                raise HL7Error(
                    hl7v2.SEGMENT_SEQUENCE_ERROR,
                    f"PID segment {pending[1]} of the A40 has no MRG segment",
                    location=Location("MRG", mrg_count + 1),
                )
            pending = (seg, pid_count)
        elif seg.name == "MRG":
            mrg_count += 1
            if pending is None:
                raise HL7Error(
                    hl7v2.SEGMENT_SEQUENCE_ERROR,
                    "an MRG segment must follow the PID of the surviving patient",
                    location=Location("MRG", mrg_count),
                )
            pairs.append((pending[0], pending[1], seg, mrg_count))
            pending = None
    if pending is not None:
        raise HL7Error(
            hl7v2.SEGMENT_SEQUENCE_ERROR,
            "ADT^A40 needs an MRG segment after the PID",
            location=Location("MRG", mrg_count + 1),
        )
    if not pairs:
        raise HL7Error(
            hl7v2.SEGMENT_SEQUENCE_ERROR, "ADT^A40 needs a PID and an MRG segment", location=Location("PID")
        )
    merges: list[tuple[str, str]] = []
    for pid, pid_seq, mrg, mrg_seq in pairs:
        surviving = _pick_id(pid, pid_seq, 3, domain_oid)
        # A merge happens within one assigning authority: an INS is not merged into a local IPP.
        subsumed = _pick_id(
            mrg,
            mrg_seq,
            1,
            domain_oid or surviving.assigning_authority_oid,
            label="MRG-1 (prior patient identifier list)",
        )
        if str(subsumed) == str(surviving):
            raise HL7Error(
                hl7v2.DUPLICATE_KEY_IDENTIFIER,
                "MRG-1 names the same patient as PID-3: a patient cannot be merged into itself",
                location=Location("MRG", mrg_seq, 1),
            )
        merges.append((str(surviving), str(subsumed)))
    first_pid = pairs[0][0]
    return _Plan("A40", merges[0][0], _demographics(first_pid), merges)


def _pick_id(
    seg: Segment, sequence: int, number: int, oid: str | None, label: str = "PID-3 (patient identifier list)"
) -> CX:
    """The repetition of a CX list field that the registry keys the patient on.

    With ``oid`` only an id of that assigning authority will do; without, the first repetition
    whose CX.4 is an ISO OID. Other repetitions (local IPPs, namespace-only authorities) are
    ignored, as the registry of an affinity domain does not know them.
    """
    field_ = seg.field(number)
    where = Location(seg.name, sequence, number)
    if not field_ or field_.is_null:
        raise HL7Error(hl7v2.REQUIRED_FIELD_MISSING, f"{label} is required", location=where)
    candidates: list[tuple[int, str, str]] = []
    for index, rep in enumerate(field_, start=1):
        authority_oid, id_type = rep.subcomponent(4, 2), rep.subcomponent(4, 3)
        if id_type == "ISO" and check_oid(authority_oid) is None:
            candidates.append((index, rep.component(1), authority_oid))
    if oid is not None:
        candidates = [c for c in candidates if c[2] == oid]
    if not candidates:
        wanted = f"assigning authority &{oid}&ISO" if oid else "an ISO OID assigning authority (&OID&ISO)"
        raise HL7Error(
            hl7v2.UNKNOWN_KEY_IDENTIFIER,
            f"{label} has no identifier with {wanted}",
            location=Location(seg.name, sequence, number, component=4),
        )
    index, ident, authority_oid = candidates[0]
    where = Location(seg.name, sequence, number, index, 1)
    if not ident or ident == _HL7_NULL:
        raise HL7Error(hl7v2.REQUIRED_FIELD_MISSING, f"{label}: CX.1 (ID number) is empty", location=where)
    # A delimiter decoded from an escape would change the meaning of the canonical CX string.
    if any(c in ident for c in "^~&|\\") or ident != ident.strip():
        raise HL7Error(
            hl7v2.DATA_TYPE_ERROR,
            f"{label}: CX.1 {ident!r} must not contain HL7 delimiters or surrounding spaces",
            location=where,
        )
    try:
        canonical = normalize_cx(f"{ident}^^^&{authority_oid}&ISO")
    except ValueError as exc:
        raise HL7Error(hl7v2.DATA_TYPE_ERROR, f"{label}: {exc}", location=where) from exc
    if len(canonical) > _PID_MAX:
        raise HL7Error(
            hl7v2.DATA_TYPE_ERROR,
            f"{label}: the identifier is longer than {_PID_MAX} characters",
            location=where,
        )
    return parse_cx(canonical)


def _text(value: str) -> str | None:
    """A demographic value, None when absent or HL7's null ("").

    The registry keeps what it knew when a feed sends "" (delete): the patient record has no
    use for cleared demographics and :func:`patients.upsert` only ever sets values.
    """
    value = value.strip()
    return None if value in ("", _HL7_NULL) else value


def _demographics(pid: Segment) -> Demographics:
    """PID-5 family and given name, PID-7 birth date, PID-8 administrative sex."""
    names = pid.field(5)
    # The legal name (XPN.7 'L': the birth name of the INS) is the one identity matching uses;
    # the usual name ('D') would differ for married patients.
    chosen = next((rep for rep in names if rep.component(7) == "L"), names.rep(1))
    family = _text(chosen.subcomponent(1, 1))
    given = _text(chosen.subcomponent(2, 1))
    for value, component in ((family, 1), (given, 2)):
        if value is not None and len(value) > _NAME_MAX:
            raise HL7Error(
                hl7v2.DATA_TYPE_ERROR,
                f"PID-5.{component} is longer than {_NAME_MAX} characters",
                location=Location("PID", 1, 5, component=component),
            )
    return Demographics(family_name=family, given_name=given, birth_date=_birth_date(pid), sex=_sex(pid))


def _birth_date(pid: Segment) -> str | None:
    value = _text(pid.field(7).rep(1).subcomponent(1, 1))
    if value is None:
        return None
    where = Location("PID", 1, 7, component=1)
    match = _TS.fullmatch(value)
    if not match:
        raise HL7Error(
            hl7v2.DATA_TYPE_ERROR, f"PID-7 (date of birth) {value!r} is not an HL7 date/time", location=where
        )
    # The registry keeps the date only: the hour of birth is not part of the identity it checks.
    date = match.group(1)[:8]
    formats = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d"}
    try:
        datetime.strptime(date, formats[len(date)])  # only a calendar check
    except (KeyError, ValueError) as exc:
        raise HL7Error(
            hl7v2.DATA_TYPE_ERROR, f"PID-7 (date of birth) {value!r} is not a valid date", location=where
        ) from exc
    return date


def _sex(pid: Segment) -> str | None:
    value = _text(pid.field(8).value)
    if value is not None and value not in _SEX_CODES:
        raise HL7Error(
            hl7v2.TABLE_VALUE_NOT_FOUND,
            f"PID-8 (administrative sex) {value!r} is not in HL7 table 0001 (A, F, M, N, O, U)",
            location=Location("PID", 1, 8),
        )
    return value


def _commit(engine: Engine, plan: _Plan, event: audit.AuditEvent) -> str:
    """Apply the plan and its audit record in one transaction; returns a note for MSA-3."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with write_transaction(engine) as session:
                note = _apply(session, plan)
                if note:
                    event.detail = f"{plan.trigger}: {note}"[:4000]
                audit.record_in(session, event)
            return note
        except IntegrityError:
            if attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _apply(session: Session, plan: _Plan) -> str:
    if not plan.merges:
        existing = patients.get(session, plan.patient_id)
        patients.upsert(session, plan.patient_id, plan.demographics)
        if existing is not None and existing.merged_into is not None:
            # Accepted so that a replayed feed still succeeds, but the id stays merged: the
            # registry answers for it only through the surviving id.
            return "the patient id was merged into another id; its demographics were updated, it stays merged"
        return ""
    for surviving, subsumed in plan.merges:
        row = patients.get(session, surviving)
        if row is not None and row.merged_into is not None:
            # Merging into an id that was itself merged away would hide both patients' documents.
            raise HL7Error(
                hl7v2.UNKNOWN_KEY_IDENTIFIER,
                "the surviving patient id (PID-3) was itself merged into another id",
                location=Location("PID", 1, 3),
            )
        patients.upsert(session, surviving, plan.demographics if surviving == plan.patient_id else None)
        patients.merge(session, surviving, subsumed)
    return ""
