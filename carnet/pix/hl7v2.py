"""A small HL7 v2 ER7 ("pipe and hat") parser and ACK builder, enough for the ITI-8 feed.

Only what a Patient Identity Feed needs is here: splitting a message into segments, fields,
repetitions, components and subcomponents with the separators the sender declared in MSH-1 and
MSH-2, decoding escape sequences, choosing the character set from MSH-18, and building the
original-mode acknowledgement (MSH, MSA, ERR). There is no message-structure grammar: the ITI-8
handler checks the few segments it uses itself.

Positions are the HL7 ones, counted from 1 as in the standard: ``msg.segment("PID").field(3)``
is PID-3, ``.rep(2)`` its second repetition, ``.component(4)`` CX.4 and ``.subcomponent(4, 2)``
CX.4.2. For MSH, field 1 is the field separator itself and field 2 the encoding characters, so
MSH-9 is ``field(9)`` as in every HL7 text. Absent positions read as empty, never as errors,
because HL7 makes trailing empty fields and components optional.

Stored values stay escaped (ER7) and are decoded only when read, so that a field copied into the
acknowledgement (MSH-3 to MSH-6) is copied exactly as the sender wrote it.

Parsing problems raise :class:`HL7Error`, which carries the HL7 table 0357 error code, the
location and the acknowledgement code to answer with.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ERROR_CODES",
    "Encoding",
    "Field",
    "HL7Error",
    "Location",
    "Message",
    "Repetition",
    "Segment",
    "build_ack",
    "decode",
    "encode",
    "new_control_id",
    "parse",
]

# HL7 table 0357, Message error condition codes (v2.5).
SEGMENT_SEQUENCE_ERROR = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
TABLE_VALUE_NOT_FOUND = 103
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT_CODE = 201
UNSUPPORTED_PROCESSING_ID = 202
UNSUPPORTED_VERSION_ID = 203
UNKNOWN_KEY_IDENTIFIER = 204
DUPLICATE_KEY_IDENTIFIER = 205
APPLICATION_RECORD_LOCKED = 206
APPLICATION_INTERNAL_ERROR = 207

ERROR_CODES: dict[int, str] = {
    0: "Message accepted",
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    APPLICATION_RECORD_LOCKED: "Application record locked",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}

# HL7 table 0211 (MSH-18) names mapped to Python codecs. Only single-byte and UTF-8 sets: the
# header of a UTF-16 message could not even be read byte-wise to find MSH-18.
_CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
}

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
_SEGMENT_SPLIT = re.compile(r"\r\n|\r|\n")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")


@dataclass(frozen=True)
class Location:
    """An HL7 v2.5 ERL: where in the message an error is (ERR-2)."""

    segment: str
    sequence: int = 1
    field: int | None = None
    repetition: int | None = None
    component: int | None = None
    subcomponent: int | None = None

    def parts(self) -> list[str]:
        values: list[object] = [
            self.segment,
            self.sequence,
            self.field,
            self.repetition,
            self.component,
            self.subcomponent,
        ]
        out = ["" if v is None else str(v) for v in values]
        while out and out[-1] == "":
            out.pop()
        return out


class HL7Error(Exception):
    """A message the feed cannot accept, answered with ``ack_code`` and an ERR segment.

    ``code`` is from HL7 table 0357. ``ack_code`` is ``AR`` when the message is refused for what
    it is (type, event, version, unreadable) and ``AE`` when its content is wrong. ``header`` is
    the part of the message that could be read, so the acknowledgement can still be addressed.
    """

    def __init__(
        self, code: int, text: str, *, ack_code: str = "AE", location: Location | None = None
    ) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.ack_code = ack_code
        self.location = location
        self.header: Message | None = None


@dataclass(frozen=True)
class Encoding:
    """The delimiters of one message: MSH-1 and the characters of MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    # HL7 v2.7 adds a fifth encoding character (truncation, '#'); kept so it round-trips.
    truncation: str = ""

    @property
    def characters(self) -> str:
        """MSH-2 as the sender wrote it."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation

    @classmethod
    def from_header(cls, field_separator: str, characters: str) -> Encoding:
        if len(characters) not in (4, 5):
            raise HL7Error(
                DATA_TYPE_ERROR,
                f"MSH-2 must hold 4 encoding characters (^~\\&), not {characters!r}",
                ack_code="AR",
                location=Location("MSH", 1, 2),
            )
        enc = cls(
            field_separator,
            characters[0],
            characters[1],
            characters[2],
            characters[3],
            characters[4] if len(characters) == 5 else "",
        )
        delimiters = [field_separator, *characters]
        # Letters, digits and line breaks would make the message ambiguous to split.
        if len(set(delimiters)) != len(delimiters) or any(c.isalnum() or c.isspace() for c in delimiters):
            raise HL7Error(
                DATA_TYPE_ERROR,
                f"MSH-1/MSH-2 delimiters {field_separator + characters!r} must be distinct "
                "punctuation characters",
                ack_code="AR",
                location=Location("MSH", 1, 2),
            )
        return enc

    def unescape(self, value: str) -> str:
        r"""Decode the escape sequences of one primitive value (\F\ \S\ \T\ \R\ \E\ \Xhh\ ...).

        Formatting escapes (\H\, \N\) carry no meaning for identifiers and names and are dropped;
        \.br\ becomes a line break. An unknown or unterminated sequence is kept as written: it
        was probably a literal escape character the sender forgot to escape.
        """
        esc = self.escape
        if esc not in value:
            return value
        out: list[str] = []
        i = 0
        while i < len(value):
            end = value.find(esc, i)
            if end < 0:
                out.append(value[i:])
                break
            out.append(value[i:end])
            close = value.find(esc, end + 1)
            if close < 0:
                out.append(value[end:])
                break
            replacement = self._replacement(value[end + 1 : close])
            out.append(value[end : close + 1] if replacement is None else replacement)
            i = close + 1
        return "".join(out)

    def _replacement(self, sequence: str) -> str | None:
        simple = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
            "H": "",
            "N": "",
            ".br": "\n",
        }
        if self.truncation:
            simple["P"] = self.truncation
        if sequence in simple:
            return simple[sequence]
        if sequence[:1] == "X" and _HEX.fullmatch(sequence[1:]):
            raw = bytes.fromhex(sequence[1:])
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.decode("latin-1")
        return None

    def escape_text(self, value: str) -> str:
        """Encode text so it can be placed in one primitive position of this message."""
        table = {
            self.escape: "E",
            self.field: "F",
            self.component: "S",
            self.subcomponent: "T",
            self.repetition: "R",
        }
        if self.truncation:
            table[self.truncation] = "P"
        out: list[str] = []
        for ch in value:
            if ch in table:
                out.append(f"{self.escape}{table[ch]}{self.escape}")
            elif ch in "\r\n":
                # A raw line break would end the segment.
                out.append(f"{self.escape}X{ord(ch):02X}{self.escape}")
            else:
                out.append(ch)
        return "".join(out)

    def compose(self, *components: str) -> str:
        """One field value from plain-text components (escaped, trailing empties dropped)."""
        parts = [self.escape_text(c) for c in components]
        while parts and parts[-1] == "":
            parts.pop()
        return self.component.join(parts)


class Repetition:
    """One occurrence of a field: its components, each a list of decoded subcomponents."""

    __slots__ = ("_components", "_encoding")

    def __init__(self, raw: str, encoding: Encoding, literal: bool = False) -> None:
        self._encoding = encoding
        if literal:
            self._components = [[raw]]
        else:
            self._components = [
                [encoding.unescape(s) for s in c.split(encoding.subcomponent)]
                for c in raw.split(encoding.component)
            ]

    def subcomponents(self, n: int) -> list[str]:
        """Decoded subcomponents of component ``n`` (1-based); ``[]`` when absent."""
        return list(self._components[n - 1]) if 1 <= n <= len(self._components) else []

    def subcomponent(self, n: int, m: int) -> str:
        subs = self.subcomponents(n)
        return subs[m - 1] if 1 <= m <= len(subs) else ""

    def component(self, n: int) -> str:
        """Decoded component ``n``; for a composite component its subcomponents joined by '&'.

        Use :meth:`subcomponent` when a subcomponent may itself contain an escaped '&'.
        """
        return self._encoding.subcomponent.join(self.subcomponents(n))

    def __len__(self) -> int:
        return len(self._components)

    def __bool__(self) -> bool:
        return any(s for c in self._components for s in c)


class Field:
    """One field of a segment, with its repetitions; empty (falsy) when absent."""

    __slots__ = ("_encoding", "_literal", "raw")

    def __init__(self, raw: str, encoding: Encoding, literal: bool = False) -> None:
        self.raw = raw
        self._encoding = encoding
        # MSH-1 and MSH-2 hold the delimiters themselves and must not be split.
        self._literal = literal

    @property
    def repetitions(self) -> list[Repetition]:
        if self.raw == "":
            return []
        if self._literal:
            return [Repetition(self.raw, self._encoding, literal=True)]
        return [Repetition(r, self._encoding) for r in self.raw.split(self._encoding.repetition)]

    def rep(self, i: int = 1) -> Repetition:
        """Repetition ``i`` (1-based), empty when absent."""
        reps = self.repetitions
        return reps[i - 1] if 1 <= i <= len(reps) else Repetition("", self._encoding)

    def component(self, n: int) -> str:
        """Component ``n`` of the first repetition."""
        return self.rep(1).component(n)

    @property
    def value(self) -> str:
        """The decoded first component of the first repetition (the whole value of a primitive)."""
        return self.rep(1).component(1)

    @property
    def is_null(self) -> bool:
        """HL7's explicit null ``""``: the receiver should delete the value it holds."""
        return self.raw == '""'

    def __iter__(self) -> Iterator[Repetition]:
        return iter(self.repetitions)

    def __len__(self) -> int:
        return len(self.repetitions)

    def __bool__(self) -> bool:
        return self.raw != ""

    def __str__(self) -> str:
        return self.raw


class Segment:
    """One segment: its name and raw (still escaped) fields, indexed by HL7 position."""

    __slots__ = ("_fields", "encoding", "name")

    def __init__(self, name: str, fields: Sequence[str], encoding: Encoding) -> None:
        """``fields[0]`` is field 1; for MSH that is the field separator itself (MSH-1)."""
        self.name = name
        self.encoding = encoding
        self._fields = list(fields)

    @classmethod
    def from_er7(cls, line: str, encoding: Encoding) -> Segment:
        parts = line.split(encoding.field)
        if parts[0] == "MSH":
            return cls("MSH", [encoding.field, *parts[1:]], encoding)
        return cls(parts[0], parts[1:], encoding)

    def field(self, n: int) -> Field:
        raw = self._fields[n - 1] if 1 <= n <= len(self._fields) else ""
        return Field(raw, self.encoding, literal=self.name == "MSH" and n in (1, 2))

    def __len__(self) -> int:
        return len(self._fields)

    def to_er7(self) -> str:
        fields = list(self._fields)
        while fields and fields[-1] == "":
            fields.pop()
        if self.name == "MSH":
            return "MSH" + self.encoding.field + self.encoding.field.join(fields[1:])
        return self.encoding.field.join([self.name, *fields])


class Message:
    """A parsed message: its segments in order and the encoding declared in its MSH."""

    def __init__(self, segments: Sequence[Segment], encoding: Encoding) -> None:
        self.segments = list(segments)
        self.encoding = encoding

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        """The ``occurrence``-th segment called ``name`` (1-based), or None."""
        found = self.all(name)
        return found[occurrence - 1] if 1 <= occurrence <= len(found) else None

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def get(self, path: str) -> str:
        """Decoded value at a terse path ``SEG-field[.component[.subcomponent]]``, e.g. ``PID-5.1.1``.

        First segment of that name, first repetition; ``''`` when anything is absent.
        """
        match = re.fullmatch(r"([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?(?:\.(\d+))?", path)
        if not match:
            raise ValueError(f"not an HL7 path: {path!r}")
        seg = self.segment(match.group(1))
        if seg is None:
            return ""
        field = seg.field(int(match.group(2)))
        if match.group(3) is None:
            return field.value
        if match.group(4) is None:
            return field.component(int(match.group(3)))
        return field.rep(1).subcomponent(int(match.group(3)), int(match.group(4)))

    @property
    def message_type(self) -> str:
        return self.get("MSH-9.1")

    @property
    def trigger_event(self) -> str:
        return self.get("MSH-9.2")

    @property
    def structure(self) -> str:
        return self.get("MSH-9.3")

    @property
    def control_id(self) -> str:
        return self.get("MSH-10")

    @property
    def version(self) -> str:
        return self.get("MSH-12.1")

    def to_er7(self) -> str:
        return "".join(s.to_er7() + "\r" for s in self.segments)

    def __str__(self) -> str:
        return self.to_er7()


def _parse_header(line: str) -> Message:
    if not line.startswith("MSH") or len(line) < 8:
        raise HL7Error(
            SEGMENT_SEQUENCE_ERROR,
            "the message must start with an MSH segment",
            ack_code="AR",
            location=Location("MSH"),
        )
    separator = line[3]
    encoding = Encoding.from_header(separator, line[4:].split(separator, 1)[0])
    return Message([Segment.from_er7(line, encoding)], encoding)


def parse(text: str) -> Message:
    """Parse one ER7 message. Segments may end with CR (the standard), LF or CRLF.

    Blank lines are ignored, since file-based and hand-written senders often leave them; a
    segment name that is not three upper-case letters or digits, or a second MSH (two messages
    run together), is a segment sequence error.
    """
    lines = [line for line in _SEGMENT_SPLIT.split(text.lstrip("\ufeff")) if line.strip()]
    if not lines:
        raise HL7Error(SEGMENT_SEQUENCE_ERROR, "empty message", ack_code="AR", location=Location("MSH"))
    message = _parse_header(lines[0])
    encoding = message.encoding
    counts: dict[str, int] = {"MSH": 1}
    try:
        for line in lines[1:]:
            name = line[:3]
            if not _SEGMENT_NAME.fullmatch(name) or (len(line) > 3 and line[3] != encoding.field):
                shown = line[:20] + ("..." if len(line) > 20 else "")
                raise HL7Error(SEGMENT_SEQUENCE_ERROR, f"not an HL7 segment: {shown!r}")
            counts[name] = counts.get(name, 0) + 1
            if name == "MSH":
                raise HL7Error(
                    SEGMENT_SEQUENCE_ERROR,
                    "a second MSH segment: send one message per MLLP frame",
                    location=Location("MSH", counts[name]),
                )
            message.segments.append(Segment.from_er7(line, encoding))
    except HL7Error as exc:
        exc.header = Message([message.msh], encoding)
        raise
    return message


def _charset(header_line: str) -> str:
    """MSH-18 of a header line (first repetition), read without any other validation."""
    try:
        return _parse_header(header_line).get("MSH-18").strip().upper()
    except HL7Error:
        return ""


def decode(data: bytes) -> str:
    """Decode the bytes of one message with the character set declared in MSH-18.

    When MSH-18 is empty or ASCII (HL7's default, which many senders leave in place while
    sending accented names) the text is read as UTF-8, or as ISO 8859-1 if it is not valid
    UTF-8. A declared set the bytes do not match is refused rather than guessed.
    """
    header = _SEGMENT_SPLIT.split(data[:4096].decode("latin-1"), 1)[0]
    charset = _charset(header)
    codec = _CHARSETS.get(charset)
    if codec is not None and codec != "ascii":
        try:
            return data.decode(codec)
        except UnicodeDecodeError as exc:
            error = HL7Error(
                DATA_TYPE_ERROR,
                f"the message is not valid {charset} (MSH-18): {exc.reason} at byte {exc.start}",
                ack_code="AR",
                location=Location("MSH", 1, 18),
            )
            # A charset was read from it, so the header parses: the ACK can be addressed.
            error.header = _parse_header(header)
            raise error from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def encode(text: str) -> bytes:
    """Encode a message (typically an ACK) in the character set its own MSH-18 declares."""
    header = _SEGMENT_SPLIT.split(text, 1)[0]
    codec = _CHARSETS.get(_charset(header), "utf-8")
    return text.encode(codec, errors="replace")


def new_control_id() -> str:
    """A fresh MSH-10: 20 hex characters, the ST length HL7 v2.3.1 to v2.5 allow."""
    return secrets.token_hex(10).upper()


def _timestamp(when: datetime | None = None) -> str:
    moment = (when or datetime.now()).astimezone()
    return moment.strftime("%Y%m%d%H%M%S%z")


def _version_before_25(version: str) -> bool:
    numbers = re.findall(r"\d+", version)
    return bool(numbers) and tuple(int(n) for n in numbers[:2]) < (2, 5)


def build_ack(
    original: Message | None,
    ack_code: str,
    *,
    text: str = "",
    error: HL7Error | None = None,
    application: str = "CARNET",
    control_id: str | None = None,
    when: datetime | None = None,
) -> Message:
    """The original-mode acknowledgement of ``original`` (MSH, MSA and, on error, ERR).

    Sending and receiving application/facility are swapped and copied as written, MSH-9 is
    ``ACK^<trigger>^ACK``, MSH-11, MSH-12 and MSH-18 are those of the original, MSA-2 is its
    MSH-10. ``original`` may be None (or only a header) when the message could not be read; the
    ACK then uses the default delimiters and version 2.5. ``application`` fills MSH-3 when the
    sender left its MSH-5 empty.
    """
    enc = original.encoding if original is not None else Encoding()
    msh = original.msh if original is not None else Segment("MSH", ["|", enc.characters], enc)

    def raw(n: int, default: str = "") -> str:
        return msh.field(n).raw or default

    trigger = original.trigger_event if original is not None else ""
    version = raw(12, "2.5")
    header = [
        enc.field,
        enc.characters,
        raw(5, enc.escape_text(application)),
        raw(6),
        raw(3),
        raw(4),
        _timestamp(when),
        "",
        f"ACK{enc.component}{enc.escape_text(trigger)}{enc.component}ACK",
        enc.escape_text(control_id or new_control_id()),
        raw(11, "P"),
        version,
        "",
        "",
        "",
        "",
        "",
        raw(18),
    ]
    segments = [Segment("MSH", header, enc), Segment("MSA", [ack_code, raw(10), enc.escape_text(text)], enc)]
    if error is not None:
        description = ERROR_CODES.get(error.code, "")
        location = error.location.parts() if error.location else []
        err: list[str] = [""] * 8
        if _version_before_25(original.version if original is not None else "2.5"):
            # v2.3.1/v2.4 receivers read ERR-1 (ELD: segment^sequence^field^code&text&table).
            eld = [enc.escape_text(p) for p in (location + ["", "", ""])[:3]]
            code = enc.subcomponent.join([str(error.code), enc.escape_text(description), "HL70357"])
            err[0] = enc.component.join([*eld, code]) if location else enc.component.join(["", "", "", code])
        err[1] = enc.component.join(enc.escape_text(p) for p in location)
        err[2] = enc.compose(str(error.code), description, "HL70357")
        err[3] = "E"
        err[7] = enc.escape_text(error.text)
        segments.append(Segment("ERR", err, enc))
    return Message(segments, enc)
