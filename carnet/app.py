"""Application factory: one Flask app serving the registry, the repository and (later) FHIR.

Nothing happens at import time. ``create_app`` builds the services a request needs (engine,
policy decision point, blob store, registry client), migrates the database and mounts one
blueprint per surface.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, jsonify
from sqlalchemy import Engine, text

from carnet.config import Settings
from carnet.db import make_engine
from carnet.migrate import upgrade
from carnet.repository.blobstore import BlobStore
from carnet.security.policy import OpenPolicy, PolicyDecisionPoint


@dataclass
class Carnet:
    """The services behind every request, reachable as ``current_app.extensions['carnet']``."""

    settings: Settings
    engine: Engine
    pdp: PolicyDecisionPoint
    blobs: BlobStore


def build(settings: Settings, engine: Engine | None = None) -> Carnet:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or make_engine(settings.db_url)
    upgrade(engine)
    blobs = BlobStore(settings.blob_dir)
    blobs.recover(engine)
    return Carnet(settings, engine, OpenPolicy(settings.allow_anonymous), blobs)


def create_app(settings: Settings | None = None, carnet: Carnet | None = None) -> Flask:
    settings = settings or (carnet.settings if carnet else Settings.from_env())
    carnet = carnet or build(settings)
    app = Flask("carnet")
    # Flask's own cap; SOAP bodies are read as streams and capped again there.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["carnet"] = carnet

    from carnet.registry.endpoint import blueprint as registry_bp
    from carnet.repository.endpoint import blueprint as repository_bp

    app.register_blueprint(registry_bp)
    app.register_blueprint(repository_bp)

    @app.get("/health")
    def health() -> Response:
        with carnet.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return jsonify(
            status="ok", database=carnet.engine.dialect.name, repositoryUniqueId=settings.repository_unique_id
        )

    return app
