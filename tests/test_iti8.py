"""ITI-8 Patient Identity Feed: HL7 v2 parsing, ADT handling, audit and the MLLP listener.

All identities are synthetic: INS-NIR shaped numbers under the INS *test* OID
1.2.250.1.213.1.4.10 and invented names. The end-to-end tests talk to the listener with the
``hl7`` package's MLLP client, which this project did not write.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hl7
import hl7.client
import pytest
from sqlalchemy import Engine, select

from carnet.config import Settings
from carnet.db import read_session, write_transaction
from carnet.pix import hl7v2, iti8
from carnet.pix.mllp import END_BLOCK, START_BLOCK, FrameReader, FrameTooLarge, frame, serve_mllp
from carnet.registry import patients
from carnet.registry.schema import AuditEventRow

INS_OID = "1.2.250.1.213.1.4.10"
IPP_OID = "1.2.250.1.999.2.7"  # a made-up hospital's local patient id domain

INS_A = "248039263001064"
INS_B = "183126942500431"
INS_C = "299122B12345678"

PID_A = f"{INS_A}^^^&{INS_OID}&ISO"
PID_B = f"{INS_B}^^^&{INS_OID}&ISO"
PID_C = f"{INS_C}^^^&{INS_OID}&ISO"


def ins(number: str) -> str:
    """PID-3 repetition as a French sender writes an INS: namespace, OID and type code."""
    return f"{number}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS"


def adt(
    trigger: str,
    pid3: str | None = None,
    *,
    control: str = "MSG0001",
    version: str = "2.5",
    structure: str | None = None,
    name: str = "TESTFAMILLE^Camille^^^^^L",
    birth: str = "19800131",
    sex: str = "F",
    mrg: str | None = None,
    app: str = "SIH^1.2.250.1.999.3.1^ISO",
    charset: str = "",
    sep: str = "\r",
) -> str:
    if structure is None:
        structure = {"A40": "ADT_A39", "A05": "ADT_A05"}.get(trigger, "ADT_A01")
    pid3 = ins(INS_A) if pid3 is None else pid3
    msh = (
        f"MSH|^~\\&|{app}|HOPITAL TEST|CARNET|DMP|20240315093000||ADT^{trigger}^{structure}|{control}|P|"
        f"{version}||||||{charset}"
    ).rstrip("|")
    segments = [
        msh,
        f"EVN|{trigger}|20240315093000",
        f"PID|1||{pid3}||{name}||{birth}|{sex}|||1 RUE DES TESTS^^PARIS^^75001^FRA",
    ]
    if mrg is not None:
        segments.append(f"MRG|{mrg}")
    if trigger != "A40":
        segments.append("PV1|1|N")
    return sep.join(segments) + sep


def ack_of(text: str) -> hl7v2.Message:
    return hl7v2.parse(text)


def err_code(ack: hl7v2.Message) -> str:
    return ack.get("ERR-3.1")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def audit_rows(engine: Engine) -> list[AuditEventRow]:
    with read_session(engine) as session:
        return list(session.scalars(select(AuditEventRow).order_by(AuditEventRow.id)))


# ---------------------------------------------------------------------------------------------
# hl7v2: parser and builder
# ---------------------------------------------------------------------------------------------


def test_parse_positions_repetitions_components_subcomponents() -> None:
    msg = hl7v2.parse(adt("A01", f"LOC123^^^HOP&{IPP_OID}&ISO^PI~{ins(INS_A)}"))
    assert [s.name for s in msg.segments] == ["MSH", "EVN", "PID", "PV1"]
    assert msg.msh.field(1).value == "|"
    assert msg.msh.field(2).value == "^~\\&"
    assert (msg.message_type, msg.trigger_event, msg.structure) == ("ADT", "A01", "ADT_A01")
    assert msg.control_id == "MSG0001" and msg.version == "2.5"
    pid = msg.segment("PID")
    assert pid is not None
    ids = pid.field(3)
    assert len(ids) == 2
    assert ids.rep(2).component(1) == INS_A
    assert ids.rep(2).subcomponents(4) == ["ASIP-SANTE-INS-NIR", INS_OID, "ISO"]
    assert ids.rep(2).subcomponent(4, 2) == INS_OID
    assert ids.rep(2).component(5) == "INS"
    assert ids.rep(3).component(1) == ""  # absent repetition reads as empty
    assert msg.get("PID-5.1") == "TESTFAMILLE" and msg.get("PID-5.2") == "Camille"
    assert msg.get("PID-3.4.2") == IPP_OID
    assert msg.get("PID-99") == "" and msg.get("ZZZ-1") == ""
    assert msg.segment("MRG") is None


def test_escape_sequences_decoded_and_encoded() -> None:
    enc = hl7v2.Encoding()
    assert enc.unescape(r"A\F\B\S\C\T\D\R\E\E\F") == "A|B^C&D~E\\F"
    assert enc.unescape("\\X48C3A9\\l\\H\\ne\\N\\") == "Hélne"
    assert enc.unescape(r"line\.br\two") == "line\ntwo"
    # Unknown and unterminated sequences are kept as sent.
    assert enc.unescape(r"a\Zfoo\b") == r"a\Zfoo\b"
    assert enc.unescape("trailing\\") == "trailing\\"
    text = "a|b^c&d~e\\f\rg"
    assert enc.unescape(enc.escape_text(text)) == text
    msg = hl7v2.parse("MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rPID|1||X||O\\S\\NEIL\\T\\FILS^Ann\\E\\e\r")
    assert msg.get("PID-5.1") == "O^NEIL&FILS"
    assert msg.get("PID-5.2") == "Ann\\e"


def test_custom_delimiters_from_msh() -> None:
    msg = hl7v2.parse("MSH#*!@%#APP#FAC#R#RF###ADT*A01#7#P#2.5\rPID#1##ID1***%1.2.3%ISO##NOM*Pre\r")
    assert msg.encoding.field == "#" and msg.encoding.component == "*"
    assert msg.trigger_event == "A01"
    assert msg.get("PID-3.4.2") == "1.2.3"
    assert msg.get("PID-5.2") == "Pre"
    ack = hl7v2.build_ack(msg, "AA").to_er7()
    assert ack.startswith("MSH#*!@%#R#RF#APP#FAC#")


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_segment_separators(sep: str) -> None:
    msg = hl7v2.parse(adt("A01", sep=sep) + sep + sep)
    assert [s.name for s in msg.segments] == ["MSH", "EVN", "PID", "PV1"]


@pytest.mark.parametrize(
    "text, code",
    [
        ("", 100),
        ("PID|1||X\r", 100),
        ("MSH|^~|A|B|C\r", 102),
        ("MSH|^~\\&&|A|B|C\r", 102),
        ("MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rpid|1\r", 100),
        ("MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5\rMSH|^~\\&|A\r", 100),
    ],
)
def test_parse_errors(text: str, code: int) -> None:
    with pytest.raises(hl7v2.HL7Error) as info:
        hl7v2.parse(text)
    assert info.value.code == code


def test_ack_is_readable_by_another_parser() -> None:
    original = hl7v2.parse(adt("A01", control="CTRL-42"))
    error = hl7v2.HL7Error(101, "PID-3 is required", location=hl7v2.Location("PID", 1, 3))
    text = hl7v2.build_ack(original, "AE", text="PID-3 | missing", error=error).to_er7()
    theirs = hl7.parse(text)
    assert str(theirs.segment("MSH")[3]) == "CARNET"  # MSH-3 <- original MSH-5
    assert str(theirs.segment("MSH")[5]) == "SIH^1.2.250.1.999.3.1^ISO"  # MSH-5 <- original MSH-3
    assert str(theirs.segment("MSH")[6]) == "HOPITAL TEST"
    assert str(theirs.segment("MSH")[9]) == "ACK^A01^ACK"
    assert str(theirs.segment("MSH")[12]) == "2.5"
    assert str(theirs.segment("MSA")[1]) == "AE"
    assert str(theirs.segment("MSA")[2]) == "CTRL-42"
    assert str(theirs.segment("ERR")[3]) == "101^Required field missing^HL70357"
    assert str(theirs.segment("ERR")[4]) == "E"
    ours = hl7v2.parse(text)
    assert ours.get("MSA-3") == "PID-3 | missing"  # escaped on the wire, decoded here
    assert ours.get("ERR-2.1") == "PID" and ours.get("ERR-2.3") == "3"
    assert ours.control_id != "CTRL-42" and len(ours.control_id) == 20


def test_ack_for_v231_carries_err1() -> None:
    original = hl7v2.parse(adt("A01", version="2.3.1"))
    error = hl7v2.HL7Error(204, "unknown", location=hl7v2.Location("PID", 1, 3))
    ack = hl7v2.build_ack(original, "AE", error=error)
    assert ack.get("MSH-12") == "2.3.1"
    assert ack.get("ERR-1.1") == "PID" and ack.get("ERR-1.3") == "3"
    assert ack.segment("ERR").field(1).rep(1).subcomponent(4, 1) == "204"  # type: ignore[union-attr]


def test_decode_charsets() -> None:
    latin = adt("A01", name="HÉLÈNE^Zoé^^^^^L", charset="8859/1").encode("latin-1")
    assert "HÉLÈNE" in hl7v2.decode(latin)
    # Undeclared: UTF-8 when valid, else ISO 8859-1.
    assert "Zoé" in hl7v2.decode(adt("A01", name="X^Zoé").encode("utf-8"))
    assert "Zoé" in hl7v2.decode(adt("A01", name="X^Zoé").encode("latin-1"))
    bad = adt("A01", name="X^Zoé", charset="UNICODE UTF-8").encode("latin-1")
    with pytest.raises(hl7v2.HL7Error) as info:
        hl7v2.decode(bad)
    assert info.value.ack_code == "AR" and info.value.header is not None
    ack = hl7v2.build_ack(hl7v2.parse(hl7v2.decode(latin)), "AA", text="é").to_er7()
    assert hl7v2.encode(ack).endswith("é\r".encode("latin-1"))


# ---------------------------------------------------------------------------------------------
# ITI-8 handling
# ---------------------------------------------------------------------------------------------


def test_a01_creates_patient(engine: Engine, settings: Settings) -> None:
    ack = ack_of(iti8.handle(engine, adt("A01", control="A01-1"), settings))
    assert ack.get("MSA-1") == "AA"
    assert ack.get("MSA-2") == "A01-1"
    assert ack.get("MSH-9") == "ACK" and ack.get("MSH-9.2") == "A01" and ack.get("MSH-9.3") == "ACK"
    assert ack.segment("ERR") is None
    with read_session(engine) as session:
        assert patients.is_active(session, PID_A)
        row = patients.get(session, PID_A)
        assert row is not None
        assert (row.family_name, row.given_name, row.birth_date, row.sex) == (
            "TESTFAMILLE",
            "Camille",
            "19800131",
            "F",
        )


def test_a01_replay_is_idempotent(engine: Engine, settings: Settings) -> None:
    for _ in range(3):
        assert ack_of(iti8.handle(engine, adt("A01"), settings)).get("MSA-1") == "AA"
    with read_session(engine) as session:
        assert patients.query_ids(session, PID_A) == [PID_A]


def test_a01_keeps_the_iso_oid_repetition(engine: Engine, settings: Settings) -> None:
    # A namespace-only local id first, then the INS: the registry keeps the INS.
    pid3 = f"LOC42^^^HOPITAL^PI~{ins(INS_A)}"
    assert ack_of(iti8.handle(engine, adt("A01", pid3), settings)).get("MSA-1") == "AA"
    with read_session(engine) as session:
        assert patients.is_active(session, PID_A)
        assert patients.get(session, "LOC42^^^HOPITAL") is None


def test_affinity_domain_oid_selects_the_repetition(engine: Engine, settings: Settings) -> None:
    pid3 = f"IPP77^^^HOP&{IPP_OID}&ISO^PI~{ins(INS_B)}"
    # Without a configured domain the first ISO OID repetition (the IPP) is taken ...
    assert ack_of(iti8.handle(engine, adt("A01", pid3, control="1"), settings)).get("MSA-1") == "AA"
    # ... with one, the repetition of that domain.
    settings.affinity_domain_oid = INS_OID  # type: ignore[attr-defined]
    assert ack_of(iti8.handle(engine, adt("A01", pid3, control="2"), settings)).get("MSA-1") == "AA"
    with read_session(engine) as session:
        assert patients.is_active(session, f"IPP77^^^&{IPP_OID}&ISO")
        assert patients.is_active(session, PID_B)
    # A message with no id of the affinity domain is refused: unknown key identifier.
    only_ipp = f"IPP78^^^HOP&{IPP_OID}&ISO^PI"
    ack = ack_of(iti8.handle(engine, adt("A01", only_ipp, control="3"), settings))
    assert ack.get("MSA-1") == "AE" and err_code(ack) == "204"


def test_a08_updates_names(engine: Engine, settings: Settings) -> None:
    iti8.handle(engine, adt("A01"), settings)
    update = adt("A08", name="NOUVEAUNOM^Dominique^^^^^L", birth="", sex="")
    ack = ack_of(iti8.handle(engine, update, settings))
    assert ack.get("MSA-1") == "AA" and ack.get("MSH-9.2") == "A08"
    with read_session(engine) as session:
        row = patients.get(session, PID_A)
        assert row is not None
        assert (row.family_name, row.given_name) == ("NOUVEAUNOM", "Dominique")
        # Fields the update left empty keep their value.
        assert (row.birth_date, row.sex) == ("19800131", "F")


def test_legal_name_is_preferred(engine: Engine, settings: Settings) -> None:
    names = "USAGE^Claude^^^^^D~NAISSANCE^Claude^^^^^L"
    iti8.handle(engine, adt("A01", name=names), settings)
    with read_session(engine) as session:
        row = patients.get(session, PID_A)
        assert row is not None and row.family_name == "NAISSANCE"


@pytest.mark.parametrize(
    "trigger, structure",
    [
        ("A04", "ADT_A01"),
        ("A05", "ADT_A05"),
        ("A05", "ADT_A01"),
        ("A08", "ADT_A01"),
        ("A01", ""),
    ],
)
def test_other_create_events(engine: Engine, settings: Settings, trigger: str, structure: str) -> None:
    ack = ack_of(iti8.handle(engine, adt(trigger, structure=structure), settings))
    assert ack.get("MSA-1") == "AA"
    with read_session(engine) as session:
        assert patients.is_active(session, PID_A)


def test_v231_message_accepted(engine: Engine, settings: Settings) -> None:
    text = adt("A01", version="2.3.1", birth="198001311230")
    ack = ack_of(iti8.handle(engine, text, settings))
    assert ack.get("MSA-1") == "AA" and ack.get("MSH-12") == "2.3.1"
    with read_session(engine) as session:
        row = patients.get(session, PID_A)
        assert row is not None and row.birth_date == "19800131"


def test_a40_merges(engine: Engine, settings: Settings) -> None:
    iti8.handle(engine, adt("A01", ins(INS_A), control="1"), settings)
    iti8.handle(engine, adt("A01", ins(INS_B), control="2", name="DOUBLON^Camille"), settings)
    ack = ack_of(iti8.handle(engine, adt("A40", ins(INS_A), mrg=ins(INS_B), control="3"), settings))
    assert ack.get("MSA-1") == "AA" and ack.get("MSH-9.2") == "A40"
    with read_session(engine) as session:
        assert patients.query_ids(session, PID_B) == []
        assert set(patients.query_ids(session, PID_A)) == {PID_A, PID_B}
        assert not patients.is_active(session, PID_B)
    # Replaying the merge changes nothing and still succeeds.
    assert (
        ack_of(iti8.handle(engine, adt("A40", ins(INS_A), mrg=ins(INS_B), control="4"), settings)).get(
            "MSA-1"
        )
        == "AA"
    )


def test_feed_on_a_merged_id_is_accepted_but_stays_merged(engine: Engine, settings: Settings) -> None:
    iti8.handle(engine, adt("A40", ins(INS_A), mrg=ins(INS_B)), settings)
    ack = ack_of(iti8.handle(engine, adt("A01", ins(INS_B), name="RENOMME^Camille"), settings))
    assert ack.get("MSA-1") == "AA" and "merged" in ack.get("MSA-3")
    with read_session(engine) as session:
        assert patients.query_ids(session, PID_B) == []
        row = patients.get(session, PID_B)
        assert row is not None and row.family_name == "RENOMME"


def test_a40_several_pairs_in_one_message(engine: Engine, settings: Settings) -> None:
    text = (
        "\r".join(
            [
                "MSH|^~\\&|SIH|HOP|CARNET|DMP|20240315093000||ADT^A40^ADT_A39|M1|P|2.5",
                "EVN|A40|20240315093000",
                f"PID|1||{ins(INS_A)}||TESTFAMILLE^Camille",
                f"MRG|{ins(INS_B)}",
                f"PID|2||{ins(INS_A)}||TESTFAMILLE^Camille",
                f"MRG|{ins(INS_C)}",
            ]
        )
        + "\r"
    )
    assert ack_of(iti8.handle(engine, text, settings)).get("MSA-1") == "AA"
    with read_session(engine) as session:
        assert set(patients.query_ids(session, PID_A)) == {PID_A, PID_B, PID_C}


def test_a40_refusals(engine: Engine, settings: Settings) -> None:
    into_itself = ack_of(iti8.handle(engine, adt("A40", ins(INS_A), mrg=ins(INS_A)), settings))
    assert into_itself.get("MSA-1") == "AE" and err_code(into_itself) == "205"
    no_mrg = ack_of(iti8.handle(engine, adt("A40", ins(INS_A)), settings))
    assert no_mrg.get("MSA-1") == "AE" and err_code(no_mrg) == "100"
    empty_mrg = ack_of(iti8.handle(engine, adt("A40", ins(INS_A), mrg=""), settings))
    assert empty_mrg.get("MSA-1") == "AE" and err_code(empty_mrg) == "101"
    # MRG-1 must hold an id of the surviving id's assigning authority.
    other_domain = ack_of(iti8.handle(engine, adt("A40", ins(INS_A), mrg=f"IPP1^^^&{IPP_OID}&ISO"), settings))
    assert other_domain.get("MSA-1") == "AE" and err_code(other_domain) == "204"
    # Merging into an id that was itself merged away is refused, and changes nothing.
    assert ack_of(iti8.handle(engine, adt("A40", ins(INS_A), mrg=ins(INS_B)), settings)).get("MSA-1") == "AA"
    into_merged = ack_of(iti8.handle(engine, adt("A40", ins(INS_B), mrg=ins(INS_C)), settings))
    assert into_merged.get("MSA-1") == "AE" and err_code(into_merged) == "204"
    with read_session(engine) as session:
        assert patients.get(session, PID_C) is None


@pytest.mark.parametrize(
    "msh9, code",
    [
        ("ADT^A02^ADT_A02", "201"),
        ("ADT^A31^ADT_A05", "201"),
        ("ORU^R01^ORU_R01", "200"),
        ("ADT^A01^ADT_A39", "200"),
        ("ADT", "101"),
    ],
)
def test_unsupported_message_rejected(engine: Engine, settings: Settings, msh9: str, code: str) -> None:
    text = adt("A01").replace("ADT^A01^ADT_A01", msh9)
    ack = ack_of(iti8.handle(engine, text, settings))
    assert ack.get("MSA-1") == "AR"
    assert err_code(ack) == code
    assert ack.get("ERR-3.3") == "HL70357" and ack.get("ERR-4") == "E"
    with read_session(engine) as session:
        assert patients.get(session, PID_A) is None


def test_unsupported_version_rejected(engine: Engine, settings: Settings) -> None:
    ack = ack_of(iti8.handle(engine, adt("A01", version="3.0"), settings))
    assert ack.get("MSA-1") == "AR" and err_code(ack) == "203"


@pytest.mark.parametrize(
    "pid3, code",
    [
        ("", "101"),
        ('""', "101"),
        ("LOC1^^^HOPITAL^PI", "204"),  # no ISO OID assigning authority
        (f"^^^&{INS_OID}&ISO", "101"),  # CX.1 empty
        (f"12\\S\\3^^^&{INS_OID}&ISO", "102"),  # a delimiter in the id
        ("X1^^^&1.02.3&ISO", "204"),  # not an OID
    ],
)
def test_unusable_pid3_is_an_application_error(
    engine: Engine, settings: Settings, pid3: str, code: str
) -> None:
    ack = ack_of(iti8.handle(engine, adt("A01", pid3), settings))
    assert ack.get("MSA-1") == "AE"
    assert err_code(ack) == code
    assert ack.get("ERR-2.1") == "PID" and ack.get("ERR-2.3") == "3"


def test_missing_pid_segment(engine: Engine, settings: Settings) -> None:
    text = "MSH|^~\\&|SIH|HOP|CARNET|DMP|20240315||ADT^A01^ADT_A01|M1|P|2.5\rEVN|A01|20240315\r"
    ack = ack_of(iti8.handle(engine, text, settings))
    assert ack.get("MSA-1") == "AE" and err_code(ack) == "100"


@pytest.mark.parametrize(
    "kwargs, code, field",
    [
        ({"sex": "X"}, "103", "8"),
        ({"birth": "19801331"}, "102", "7"),
        ({"birth": "1980-01-31"}, "102", "7"),
    ],
)
def test_bad_demographics(
    engine: Engine, settings: Settings, kwargs: dict[str, str], code: str, field: str
) -> None:
    ack = ack_of(iti8.handle(engine, adt("A01", **kwargs), settings))
    assert ack.get("MSA-1") == "AE" and err_code(ack) == code and ack.get("ERR-2.3") == field
    with read_session(engine) as session:
        assert patients.get(session, PID_A) is None


def test_escape_sequences_in_names_are_decoded(engine: Engine, settings: Settings) -> None:
    text = adt("A01", name="TEST\\T\\FILS^Marie\\F\\Anne^^^^^L")
    assert ack_of(iti8.handle(engine, text, settings)).get("MSA-1") == "AA"
    with read_session(engine) as session:
        row = patients.get(session, PID_A)
        assert row is not None
        assert (row.family_name, row.given_name) == ("TEST&FILS", "Marie|Anne")


@pytest.mark.parametrize("sep", ["\n", "\r\n"])
def test_line_feed_separated_message_accepted(engine: Engine, settings: Settings, sep: str) -> None:
    assert ack_of(iti8.handle(engine, adt("A01", sep=sep), settings)).get("MSA-1") == "AA"
    with read_session(engine) as session:
        assert patients.is_active(session, PID_A)


def test_bytes_with_declared_charset(engine: Engine, settings: Settings) -> None:
    data = adt("A01", name="HÉLÈNE^Zoé^^^^^L", charset="8859/1").encode("latin-1")
    assert ack_of(iti8.handle(engine, data, settings)).get("MSA-1") == "AA"
    with read_session(engine) as session:
        row = patients.get(session, PID_A)
        assert row is not None and (row.family_name, row.given_name) == ("HÉLÈNE", "Zoé")


def test_garbage_is_rejected_not_raised(engine: Engine, settings: Settings) -> None:
    ack = ack_of(iti8.handle(engine, b"\x00\x01 not hl7", settings))
    assert ack.get("MSA-1") == "AR" and ack.get("MSA-2") == "" and err_code(ack) == "100"


def test_audit_rows(engine: Engine, settings: Settings) -> None:
    iti8.handle(engine, adt("A01", control="C1"), settings, source_address="192.0.2.10")
    iti8.handle(engine, adt("A08", control="C2"), settings)
    iti8.handle(engine, adt("A01", ins(INS_B), control="C3"), settings)
    iti8.handle(engine, adt("A40", ins(INS_A), mrg=ins(INS_B), control="C4"), settings)
    iti8.handle(engine, adt("A02", control="C5", structure="ADT_A02"), settings)
    iti8.handle(engine, adt("A01", "", control="C6"), settings)
    rows = audit_rows(engine)
    assert [(r.transaction, r.event_id, r.action, r.outcome) for r in rows] == [
        ("ITI-8", "110110", "C", 0),
        ("ITI-8", "110110", "U", 0),
        ("ITI-8", "110110", "C", 0),
        ("ITI-8", "110110", "U", 0),
        ("ITI-8", "110110", "E", 8),
        ("ITI-8", "110110", "C", 8),
    ]
    first = rows[0]
    principal = json.loads(first.principal)
    assert principal["kind"] == "system" and principal["id"] == "iti8:SIH"
    assert first.patient_id == PID_A and first.detail == "A01"
    assert first.source_address == "192.0.2.10"
    assert {"type": "HL7Message", "id": "C1"} in json.loads(first.objects)
    merge = rows[3]
    assert merge.patient_id == PID_A and merge.detail == "A40"
    assert {"type": "Patient", "id": PID_B, "role": "subsumed"} in json.loads(merge.objects)
    assert rows[4].detail is not None and "201" in rows[4].detail
    assert rows[5].detail is not None and "101" in rows[5].detail


# ---------------------------------------------------------------------------------------------
# MLLP
# ---------------------------------------------------------------------------------------------


def test_frame_reader_partial_and_multiple_frames() -> None:
    reader = FrameReader(max_bytes=100)
    data = b"\r\n" + frame(b"ONE") + frame(b"TWO") + b"\x0bTHR"
    out: list[bytes] = []
    for i in range(len(data)):  # one byte at a time: every split point
        out += reader.feed(data[i : i + 1])
    assert out == [b"ONE", b"TWO"] and reader.pending
    assert reader.feed(b"EE\x1c") == [] and reader.feed(b"\r") == [b"THREE"]
    assert not reader.pending
    assert reader.feed(frame(b"A") + frame(b"B")) == [b"A", b"B"]


def test_frame_reader_size_limit() -> None:
    reader = FrameReader(max_bytes=10)
    assert reader.feed(frame(b"x" * 10)) == [b"x" * 10]
    with pytest.raises(FrameTooLarge):
        reader.feed(START_BLOCK + b"y" * 12)
    with pytest.raises(FrameTooLarge):
        FrameReader(max_bytes=10).feed(frame(b"z" * 11))


@pytest.fixture
def listener(engine: Engine, settings: Settings) -> Iterator[tuple[str, int]]:
    service = serve_mllp(engine, "127.0.0.1", 0, settings)
    try:
        host, port = service.server_address[:2]
        assert port != 0
        yield host, port
    finally:
        service.shutdown()


def _receive_frame(sock: socket.socket, first: bytes = b"") -> bytes:
    data = first
    while not data.endswith(END_BLOCK):
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}")
        data += chunk
    return data


def test_end_to_end_with_hl7_mllp_client(engine: Engine, listener: tuple[str, int]) -> None:
    host, port = listener
    with hl7.client.MLLPClient(host, port) as client:
        answers = []
        for text in (
            adt("A01", ins(INS_A), control="E2E-1"),
            adt("A01", ins(INS_B), control="E2E-2", name="DOUBLON^Camille"),
            adt("A40", ins(INS_A), mrg=ins(INS_B), control="E2E-3"),
        ):
            raw = _receive_frame(client.socket, client.send_message(hl7.parse(text)))
            assert raw.startswith(START_BLOCK) and raw.endswith(END_BLOCK)
            answers.append(hl7.parse(raw[1:-2].decode("utf-8")))
    assert [str(a.segment("MSA")[1]) for a in answers] == ["AA", "AA", "AA"]
    assert [str(a.segment("MSA")[2]) for a in answers] == ["E2E-1", "E2E-2", "E2E-3"]
    assert str(answers[2].segment("MSH")[9]) == "ACK^A40^ACK"
    with read_session(engine) as session:
        assert set(patients.query_ids(session, PID_A)) == {PID_A, PID_B}
        assert patients.query_ids(session, PID_B) == []
    rows = audit_rows(engine)
    assert [r.outcome for r in rows] == [0, 0, 0]
    assert rows[0].source_address == "127.0.0.1"


def test_mllp_split_writes_and_rejection(engine: Engine, listener: tuple[str, int]) -> None:
    payload = frame(adt("A04", control="SPLIT").encode()) + frame(adt("A02", structure="ADT_A02").encode())
    with socket.create_connection(listener, timeout=10) as sock:
        for i in range(0, len(payload), 7):  # the peer sees many small segments
            sock.sendall(payload[i : i + 7])
            time.sleep(0.001)
        first = _receive_frame(sock)
        rest = first[first.index(END_BLOCK) + 2 :]
        first = first[: first.index(END_BLOCK) + 2]
        second = _receive_frame(sock, rest)
    ack1 = hl7v2.parse(first[1:-2].decode())
    ack2 = hl7v2.parse(second[1:-2].decode())
    assert ack1.get("MSA-1") == "AA" and ack1.get("MSA-2") == "SPLIT"
    assert ack2.get("MSA-1") == "AR" and err_code(ack2) == "201"


def test_mllp_oversized_message_closes_connection(listener: tuple[str, int]) -> None:
    with socket.create_connection(listener, timeout=10) as sock:
        try:
            sock.sendall(START_BLOCK)
            for _ in range(40):  # 2.5 MiB without an end block, well over the 1 MiB limit
                sock.sendall(b"x" * 65536)
            closed = sock.recv(10) == b""
        except OSError:  # reset while still sending: the server closed the connection too
            closed = True
    assert closed


def test_mllp_concurrent_connections(engine: Engine, listener: tuple[str, int]) -> None:
    """Several feeds at once on SQLite: writes serialize, none fails with 'database is locked'."""
    numbers = [f"2800175{n:08d}" for n in range(24)]

    def feed(chunk: list[str]) -> list[str]:
        codes = []
        with socket.create_connection(listener, timeout=30) as sock:
            for number in chunk:
                sock.sendall(frame(adt("A01", ins(number), control=number).encode()))
                codes.append(hl7v2.parse(_receive_frame(sock)[1:-2].decode()).get("MSA-1"))
        return codes

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(feed, [numbers[i::6] for i in range(6)]))
    assert all(code == "AA" for codes in results for code in codes)
    with read_session(engine) as session:
        assert all(patients.is_active(session, f"{n}^^^&{INS_OID}&ISO") for n in numbers)


def test_shutdown_closes_open_connections(engine: Engine, settings: Settings) -> None:
    service = serve_mllp(engine, "127.0.0.1", 0, settings)
    sock = socket.create_connection(service.server_address[:2], timeout=10)
    try:
        sock.sendall(frame(adt("A01").encode()))
        assert b"MSA|AA" in _receive_frame(sock)
        service.shutdown()
        service.shutdown()  # idempotent
        with contextlib.suppress(ConnectionResetError):  # a reset is a close as well
            assert sock.recv(10) == b""
    finally:
        sock.close()


def test_merge_refuses_loops_and_moves(engine) -> None:  # type: ignore[no-untyped-def]
    """patients.merge itself (not only the feed) refuses merges that would orphan or move an id."""
    a, b, z = (f"{n}^^^&1.2.250.1.213.1.4.10&ISO" for n in ("111", "222", "333"))
    with write_transaction(engine) as session:
        patients.merge(session, b, a)
    with pytest.raises(ValueError, match="was merged into"), write_transaction(engine) as session:
        patients.merge(session, a, b)
    with pytest.raises(ValueError, match="already merged into"), write_transaction(engine) as session:
        patients.merge(session, z, a)
    with write_transaction(engine) as session:
        assert patients.query_ids(session, b) == [b, a]
        assert patients.query_ids(session, a) == []
