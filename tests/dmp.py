"""Test helpers for the DMP access layer: a test authority, signed VIHF tokens, SOAP calls that
carry them, and a Carnet pair (a development server to seed data, the DMP server under test)."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from lxml import etree
from sqlalchemy import Engine

from carnet.app import Carnet, build, create_app
from carnet.config import Settings
from carnet.dmp.api import DMP
from carnet.security import jwt, pki, vihf, xua
from carnet.security.principal import system
from carnet.soap import mtom
from carnet.xds import vocabulary as v

REPO = "1.2.250.1.999.1.1.1"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
OPERATOR = system("tests")


@dataclass(frozen=True)
class Authority:
    files: pki.AuthorityFiles
    signer: pki.Signer


def make_authority(directory: Path) -> Authority:
    """A test authority (the ``authority`` fixture of conftest: one per session, keys are slow)."""
    files = pki.init(directory)
    return Authority(files, pki.load_signer(directory))


def claims(
    ident: str = "810000000001",
    profession: str | None = "10",
    mode: str = "normal",
    reason: str | None = None,
    patient: str | None = None,
    structure: str = "10B0000000001",
    kind: vihf.TokenKind = "professional",
    name: str | None = "Dr Synthétique",
) -> vihf.Claims:
    roles = [vihf.Code(profession, vihf.PROFESSION_SYSTEM, "profession")] if profession else []
    professional = kind == "professional"
    return vihf.Claims(
        subject=ident,
        kind=kind,
        subject_name=name,
        roles=roles,
        purpose=vihf.Code(mode, vihf.ACCESS_MODE_SYSTEM, mode),
        structure=structure if professional else None,
        authentication_mode="INDIRECTE" if professional else None,
        version="3.0" if professional else None,
        patient=patient,
        reason=reason,
    )


def saml(
    authority: Authority,
    c: vihf.Claims,
    validity: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> bytes:
    return xua.issue(authority.signer, c, validity, now)


def bearer(authority: Authority, c: vihf.Claims, validity: timedelta = timedelta(hours=1)) -> str:
    return jwt.issue(authority.signer, c, validity)


def envelope(action: str, body: str, assertion: bytes | None = None) -> bytes:
    security = xua.security_header(assertion) if assertion is not None else ""
    return (
        f'<soap:Envelope xmlns:soap="{v.SOAP12}" xmlns:wsa="{v.WSA}"><soap:Header>'
        f"<wsa:Action>{action}</wsa:Action><wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
        f"{security}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def post(client, path: str, action: str, body: str, assertion: bytes | None = None):  # type: ignore[no-untyped-def]
    """(HTTP status, first element of the SOAP Body) of a SOAP call carrying ``assertion``."""
    resp = client.post(path, data=envelope(action, body, assertion), content_type="application/soap+xml")
    data = resp.get_data()
    if resp.content_type.startswith("multipart/related"):  # ITI-43 answers by MTOM
        data = mtom.read_multipart(io.BytesIO(data), resp.content_type).root.read()
    root = etree.fromstring(data)
    return resp.status_code, root.find(f"{{{v.SOAP12}}}Body")[0]


def fault_of(el: etree._Element) -> tuple[str, str]:
    """(subcode, reason) of a SOAP Fault body element."""
    sub = el.find(f".//{{{v.SOAP12}}}Subcode/{{{v.SOAP12}}}Value")
    reason = el.find(f".//{{{v.SOAP12}}}Text")
    return (sub.text if sub is not None else "") or "", (reason.text if reason is not None else "") or ""


@dataclass
class Servers:
    """The DMP server under test, and a development server on the same database to seed it."""

    ctx: Carnet
    client: object
    admin: object
    dmp: DMP
    settings: Settings


def servers(engine: Engine, data_dir: Path, authority: Authority, **overrides: object) -> Servers:
    settings = Settings(
        data_dir=data_dir,
        accept_any_patient=False,
        allow_anonymous=False,
        repository_unique_id=REPO,
        trust_store=authority.files.authority_cert,
        jwt_keys=authority.files.signer_cert,
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    dev = replace(settings, allow_anonymous=True, accept_any_patient=True)
    admin = create_app(dev, build(dev, engine)).test_client()
    ctx = build(settings, engine)
    return Servers(ctx, create_app(settings, ctx).test_client(), admin, DMP(ctx.engine, ctx.pdp), settings)
