"""Bearer JWTs for the FHIR side: the VIHF claims as IHE IUA (ITI-71/72) JWT access-token claims.

Layout of the claims: ``sub`` is the professional's national id (or the patient's own id),
``extensions.ihe_iua`` carries the IUA claims (``subject_name``, ``subject_organization_id``,
``subject_role`` and ``purpose_of_use`` as FHIR Codings, ``person_id`` for the patient), and
``extensions.dmp_vihf`` the DMP attributes IUA has no name for (``VIHF_Version``,
``Authentification_Mode``, ``Secteur_Activite``, ``Mode_Acces_Raison``, ``principal_kind``).
Tokens are verified against the configured keys only (CARNET_JWT_KEYS), with ``exp`` and ``iat``
required and the ``none`` algorithm and shared-secret algorithms refused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from carnet.security import vihf
from carnet.security.pki import Signer
from carnet.security.principal import Principal
from carnet.security.vihf import Claims, Code, TokenError

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
CLOCK_SKEW = timedelta(minutes=5)


def _coding(c: Code) -> dict[str, str]:
    out = {"system": f"urn:oid:{c.system}" if c.system and ":" not in c.system else c.system, "code": c.code}
    if c.display:
        out["display"] = c.display
    return out


def _code(value: object, claim: str) -> Code:
    if not isinstance(value, dict) or not isinstance(value.get("code"), str):
        raise TokenError(f"JWT claim {claim} must hold FHIR Codings with a 'code'")
    system = str(value.get("system", ""))
    return Code(value["code"], system.removeprefix("urn:oid:"), str(value.get("display", "")))


def issue(
    signer: Signer,
    claims: Claims,
    validity: timedelta,
    audience: str | None = None,
    now: datetime | None = None,
) -> str:
    """A signed JWT (RS256 or ES256) carrying ``claims``; ``kid`` names the signing certificate."""
    now = now or datetime.now(UTC)
    iua: dict[str, Any] = {}
    if claims.subject_name:
        iua["subject_name"] = claims.subject_name
    if claims.structure:
        iua["subject_organization_id"] = claims.structure
    if claims.roles:
        iua["subject_role"] = [_coding(r) for r in claims.roles]
    if claims.purpose:
        iua["purpose_of_use"] = [_coding(claims.purpose)]
    if claims.patient:
        iua["person_id"] = claims.patient
    dmp = {
        k: v
        for k, v in (
            (vihf.VIHF_VERSION, claims.version),
            (vihf.AUTHENTIFICATION_MODE, claims.authentication_mode),
            (vihf.SECTEUR_ACTIVITE, claims.sector),
            (vihf.MODE_ACCES_RAISON, claims.reason),
            ("principal_kind", claims.kind),
        )
        if v
    }
    payload: dict[str, Any] = {
        "iss": signer.subject,
        "sub": claims.subject,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + validity).timestamp()),
        "jti": claims.token_id or str(uuid.uuid4()),
        "extensions": {"ihe_iua": iua, "dmp_vihf": dmp},
    }
    if audience:
        payload["aud"] = audience
    algorithm = "RS256" if isinstance(signer.key, rsa.RSAPrivateKey) else "ES256"
    return pyjwt.encode(payload, signer.key, algorithm=algorithm, headers={"kid": signer.kid, "typ": "JWT"})


def verify(
    token: str,
    keys: dict[str, PublicKeyTypes],
    audience: str | None,
    max_age: timedelta,
    now: datetime | None = None,
) -> Principal:
    """The principal a bearer JWT speaks for, or ``TokenError`` saying why it is refused."""
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError as exc:
        raise TokenError(f"the bearer token is not a JWT: {exc}") from exc
    if header.get("alg") not in ALGORITHMS:
        raise TokenError(f"JWT algorithm '{header.get('alg')}' is not accepted ({', '.join(ALGORITHMS)})")
    kid = header.get("kid")
    candidates = [keys[kid]] if isinstance(kid, str) and kid in keys else list(keys.values())
    if isinstance(kid, str) and kid not in keys:
        raise TokenError(f"JWT key id '{kid}' is not among the configured keys (CARNET_JWT_KEYS)")
    payload: dict[str, Any] | None = None
    last: Exception | None = None
    for key in candidates:
        try:
            payload = pyjwt.decode(
                token,
                key=cast(Any, key),
                algorithms=ALGORITHMS,
                audience=audience,
                leeway=CLOCK_SKEW,
                options={"require": ["exp", "iat", "sub"], "verify_aud": audience is not None},
            )
            break
        except pyjwt.InvalidSignatureError as exc:
            last = exc
        except pyjwt.PyJWTError as exc:
            raise TokenError(f"the bearer token is refused: {exc}") from exc
    if payload is None:
        raise TokenError(f"the bearer token's signature does not verify against the configured keys: {last}")
    now = now or datetime.now(UTC)
    if payload["iat"] < (now - max_age - CLOCK_SKEW).timestamp():
        raise TokenError(f"the bearer token was issued more than {int(max_age.total_seconds())} s ago")
    return claims_of(payload).principal()


def claims_of(payload: dict[str, Any]) -> Claims:
    ext = payload.get("extensions") or {}
    if not isinstance(ext, dict):
        raise TokenError("JWT claim 'extensions' must be an object")
    iua = ext.get("ihe_iua") or {}
    dmp = ext.get("dmp_vihf") or {}
    if not isinstance(iua, dict) or not isinstance(dmp, dict):
        raise TokenError("JWT extensions ihe_iua and dmp_vihf must be objects")
    roles = [_code(r, "subject_role") for r in iua.get("subject_role") or []]
    purposes = [_code(p, "purpose_of_use") for p in iua.get("purpose_of_use") or []]
    kind = dmp.get("principal_kind", "professional")
    if kind not in ("professional", "patient", "legal_representative"):
        raise TokenError(f"principal_kind '{kind}' is not professional, patient or legal_representative")

    def text(source: dict[str, Any], name: str) -> str | None:
        value = source.get(name)
        return str(value) if value not in (None, "") else None

    return Claims(
        subject=str(payload.get("sub", "")),
        kind=kind,
        subject_name=text(iua, "subject_name"),
        roles=roles,
        purpose=purposes[0] if purposes else None,
        structure=text(iua, "subject_organization_id"),
        authentication_mode=text(dmp, vihf.AUTHENTIFICATION_MODE),
        version=text(dmp, vihf.VIHF_VERSION),
        sector=text(dmp, vihf.SECTEUR_ACTIVITE),
        patient=text(iua, "person_id"),
        reason=text(dmp, vihf.MODE_ACCES_RAISON),
        token_id=text(payload, "jti"),
        issuer=text(payload, "iss"),
    )
