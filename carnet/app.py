"""Application factory: one Flask app serving the registry, the repository and (later) FHIR.

Nothing happens at import time. ``create_app`` builds the services a request needs (engine,
policy decision point, blob store, registry client), migrates the database and mounts one
blueprint per surface.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify
from sqlalchemy import Engine, text

from carnet.config import Settings
from carnet.db import make_engine
from carnet.migrate import upgrade
from carnet.repository.blobstore import BlobStore
from carnet.security.dmp_policy import DMPPolicy
from carnet.security.matrix import Matrix
from carnet.security.policy import PolicyDecisionPoint
from carnet.signature.service import Signatures


@dataclass
class Carnet:
    """The services behind every request, reachable as ``current_app.extensions['carnet']``."""

    settings: Settings
    engine: Engine
    pdp: PolicyDecisionPoint
    blobs: BlobStore
    # Signature policy, trust store and seal: loaded and checked here, so bad settings stop start-up.
    signatures: Signatures = field(init=False)

    def __post_init__(self) -> None:
        self.signatures = Signatures.from_settings(self.settings)


def build(settings: Settings, engine: Engine | None = None, startup: bool = True) -> Carnet:
    """The server's parts. ``startup``: migrate the database and recover interrupted blob publishes —
    once per deployment start; a worker process forked after that passes False (recovering then
    would delete the files other workers are staging)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or make_engine(settings.db_url)
    blobs = BlobStore(settings.blob_dir)
    if startup:
        upgrade(engine)
        blobs.recover(engine)
    # The DMP's rules are the policy (docs/dmp.md); a bad matrix file stops start-up here.
    pdp = DMPPolicy(engine, Matrix.load(settings.dmp_matrix), settings.allow_anonymous)
    if settings.syslog_url:
        from carnet.security import audit
        from carnet.security.syslog import SyslogShipper

        audit.ship_to(engine, SyslogShipper.from_settings(settings))
    return Carnet(settings, engine, pdp, blobs)


def create_app(settings: Settings | None = None, carnet: Carnet | None = None) -> Flask:
    settings = settings or (carnet.settings if carnet else Settings.from_env())
    carnet = carnet or build(settings)
    app = Flask("carnet")
    # Flask's own cap; SOAP bodies are read as streams and capped again there.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["carnet"] = carnet

    from carnet.registry.endpoint import blueprint as registry_bp
    from carnet.repository.endpoint import blueprint as repository_bp
    from carnet.repository.publish import blueprint as publish_bp

    app.register_blueprint(registry_bp)
    app.register_blueprint(repository_bp)
    app.register_blueprint(publish_bp)

    from carnet.fhir.endpoint import blueprint as fhir_bp

    app.register_blueprint(fhir_bp)

    from carnet.dmp.endpoint import blueprints as dmp_soap
    from carnet.dmp.fhir import blueprint as dmp_fhir_bp
    from carnet.dmp.fhir import capabilities as dmp_fhir_capabilities
    from carnet.fhir.capability import contribute

    for bp in dmp_soap:
        app.register_blueprint(bp)
    app.register_blueprint(dmp_fhir_bp)
    contribute(app, dmp_fhir_capabilities())

    @app.get("/health")
    def health() -> Response:
        with carnet.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return jsonify(
            status="ok",
            database=carnet.engine.dialect.name,
            repositoryUniqueId=settings.repository_unique_id,
            pid=os.getpid(),  # which worker process answered (carnet serve --workers)
        )

    return app
