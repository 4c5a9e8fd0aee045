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
        s.remote_registry_url = env.get("CARNET_REMOTE_REGISTRY_URL") or None
        if "CARNET_MAX_REQUEST_BYTES" in env:
            s.max_request_bytes = int(env["CARNET_MAX_REQUEST_BYTES"])
        for key, value in overrides.items():
            if value is not None:
                setattr(s, key, value)
        s.data_dir = Path(s.data_dir)
        return s
