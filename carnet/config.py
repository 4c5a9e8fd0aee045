"""Deployment settings: defaults for an embedded server, overridable from the environment.

Every setting is documented in README.md; the environment names are the public interface.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from carnet.db import sqlite_url


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path("data"))
    database_url: str | None = None
    # The OID this repository answers to in ITI-43 and writes into repositoryUniqueId.
    repository_unique_id: str = "1.2.250.1.999.1.1.1"
    home_community_id: str = "urn:oid:1.2.250.1.999.1.1"
    # ITI-8: the assigning authority whose PID-3 identifier the registry keeps (the XDS affinity
    # domain); for the DMP the INS OID (1.2.250.1.213.1.4.8, or .10 for test identities).
    affinity_domain_oid: str | None = None
    # Test harnesses: accept any well-formed patient id without an ITI-8 feed.
    accept_any_patient: bool = False
    # Development only: requests without a valid token run as an anonymous principal.
    allow_anonymous: bool = False
    # ITI-41 forwards its metadata by ITI-42 to this registry endpoint instead of the local one.
    remote_registry_url: str | None = None
    max_request_bytes: int = 512 * 1024 * 1024
    max_query_results: int = 5000
    # Rules added to the XDS.b checks of every submission: "ihe" (none) or "dmp" (carnet.profiles).
    validation_profile: str = "ihe"
    # Value sets and maps of the profiles; None: the profiles/ directory of this source tree.
    profiles_dir: Path | None = None
    # The DMP parameter cumul-invisible_patient-masque_ps (EX_2.1-1050).
    dmp_cumul_invisible_patient_masque_ps: bool = False
    # CDA documents of submissions checked against CDA_extended.xsd and their volet's
    # schematron: "off", "warn" (answer warnings) or "reject" (refuse the submission).
    cda_validation: str = "off"
    # The ANS package holding schematrons/, infrastructure/cda/ and jeuxDeValeurs/.
    cda_schematron_dir: Path | None = None
    # DMP access control (docs/dmp.md). XUA/VIHF assertions are verified against these CA
    # certificates only; JWTs against these keys only; nothing configured: such tokens are refused.
    trust_store: Path | None = None
    jwt_keys: Path | None = None
    jwt_audience: str | None = None
    # Oldest accepted token (the DMP's VIHF often carries no NotOnOrAfter).
    token_max_age: int = 7200
    # Every XUA assertion accepted once (carnet.security.replay); otherwise only OneTimeUse ones.
    xua_single_use: bool = False
    # The matrice d'habilitations; None: the seed shipped in carnet/security/.
    dmp_matrix: Path | None = None
    # Audit records shipped by syslog (RFC 5424): udp://host:port or tls://host:port.
    syslog_url: str | None = None
    syslog_ca: Path | None = None
    syslog_client_cert: Path | None = None
    syslog_client_key: Path | None = None
    # Patient notifications: smtp://host:port or smtp+starttls://host:port, sender address.
    smtp_url: str | None = None
    smtp_from: str = "dmp-notifications@carnet.invalid"
    smtp_ca: Path | None = None
    # Signed payloads (carnet.signature, docs/signatures.md): require | verify | off. Signatures
    # are checked against trust_store above (its CA certificates, and its X509 CRL blocks) only.
    signature_policy: str = "off"
    # The organisation seal that signs the submissions received unsigned (PEM chain and key).
    seal_cert: Path | None = None
    seal_key: Path | None = None
    seal_key_password: str | None = None

    @property
    def db_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir)

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        s = cls()
        env = os.environ
        if "CARNET_DATA_DIR" in env:
            s.data_dir = Path(env["CARNET_DATA_DIR"])
        s.database_url = env.get("CARNET_DATABASE_URL") or None
        s.repository_unique_id = env.get("CARNET_REPOSITORY_UNIQUE_ID", s.repository_unique_id)
        s.home_community_id = env.get("CARNET_HOME_COMMUNITY_ID", s.home_community_id)
        s.affinity_domain_oid = env.get("CARNET_AFFINITY_DOMAIN_OID") or None
        s.accept_any_patient = _flag("CARNET_ACCEPT_ANY_PATIENT")
        s.allow_anonymous = _flag("CARNET_ALLOW_ANONYMOUS")
        s.xua_single_use = _flag("CARNET_XUA_SINGLE_USE")
        s.remote_registry_url = env.get("CARNET_REMOTE_REGISTRY_URL") or None
        if "CARNET_MAX_REQUEST_BYTES" in env:
            s.max_request_bytes = int(env["CARNET_MAX_REQUEST_BYTES"])
        s.validation_profile = env.get("CARNET_VALIDATION_PROFILE") or s.validation_profile
        s.profiles_dir = Path(env["CARNET_PROFILES_DIR"]) if env.get("CARNET_PROFILES_DIR") else None
        s.dmp_cumul_invisible_patient_masque_ps = _flag("CARNET_DMP_CUMUL_INVISIBLE_PATIENT_MASQUE_PS")
        s.cda_validation = env.get("CARNET_CDA_VALIDATION") or s.cda_validation
        if env.get("CARNET_CDA_SCHEMATRON_DIR"):
            s.cda_schematron_dir = Path(env["CARNET_CDA_SCHEMATRON_DIR"])
        for name, attr in (
            ("CARNET_TRUST_STORE", "trust_store"),
            ("CARNET_JWT_KEYS", "jwt_keys"),
            ("CARNET_DMP_MATRIX", "dmp_matrix"),
            ("CARNET_SYSLOG_CA", "syslog_ca"),
            ("CARNET_SYSLOG_CLIENT_CERT", "syslog_client_cert"),
            ("CARNET_SYSLOG_CLIENT_KEY", "syslog_client_key"),
            ("CARNET_SMTP_CA", "smtp_ca"),
            ("CARNET_SEAL_CERT", "seal_cert"),
            ("CARNET_SEAL_KEY", "seal_key"),
        ):
            if env.get(name):
                setattr(s, attr, Path(env[name]))
        s.jwt_audience = env.get("CARNET_JWT_AUDIENCE") or None
        if env.get("CARNET_TOKEN_MAX_AGE"):
            s.token_max_age = int(env["CARNET_TOKEN_MAX_AGE"])
        s.syslog_url = env.get("CARNET_SYSLOG_URL") or None
        s.smtp_url = env.get("CARNET_SMTP_URL") or None
        s.smtp_from = env.get("CARNET_SMTP_FROM") or s.smtp_from
        s.signature_policy = (env.get("CARNET_SIGNATURE_POLICY") or s.signature_policy).strip().lower()
        s.seal_key_password = env.get("CARNET_SEAL_KEY_PASSWORD") or None
        for key, value in overrides.items():
            if value is not None:
                setattr(s, key, value)
        s.data_dir = Path(s.data_dir)
        s.check()
        return s

    def check(self) -> None:
        """Refuse settings that cannot work, naming the variable to fix."""
        if self.validation_profile not in ("ihe", "dmp"):
            raise ValueError(f"CARNET_VALIDATION_PROFILE='{self.validation_profile}': use ihe or dmp")
        if self.cda_validation not in ("off", "warn", "reject"):
            raise ValueError(f"CARNET_CDA_VALIDATION='{self.cda_validation}': use off, warn or reject")
        if self.cda_validation != "off" and self.cda_schematron_dir is None:
            raise ValueError(
                f"CARNET_CDA_VALIDATION={self.cda_validation} needs CARNET_CDA_SCHEMATRON_DIR "
                "(the ANS schematron package directory)"
            )
        if self.syslog_url and not self.syslog_url.startswith(("udp://", "tls://")):
            raise ValueError(f"CARNET_SYSLOG_URL='{self.syslog_url}': use udp://host:port or tls://host:port")
        if self.syslog_url and self.syslog_url.startswith("tls://") and self.syslog_ca is None:
            raise ValueError("CARNET_SYSLOG_URL=tls://... needs CARNET_SYSLOG_CA (the audit repository's CA)")
        if self.smtp_url and not self.smtp_url.startswith(("smtp://", "smtp+starttls://")):
            raise ValueError(f"CARNET_SMTP_URL='{self.smtp_url}': use smtp://host:port or smtp+starttls://host:port")
        if self.token_max_age <= 0:
            raise ValueError(f"CARNET_TOKEN_MAX_AGE={self.token_max_age}: a positive number of seconds")
