"""XUA assertion replay cache: an assertion marked single-use is accepted once.

A SAML assertion is a bearer token: whoever holds it may present it until it expires. IHE XUA lets
a Service Provider ignore ``OneTimeUse`` (ITI TF-2 3.40.4.1.2, ITI40-016), but a DMP server should
not let a captured token be replayed: Carnet remembers the (issuer, ID) of every single-use
assertion it accepted until the assertion could no longer be accepted anyway, and refuses a second
presentation. Single-use means ``saml:Conditions/saml:OneTimeUse``, or every assertion with
``CARNET_XUA_SINGLE_USE=1`` (for deployments whose clients mint one assertion per request; test
harnesses commonly reuse one for many calls, hence not the default).

The cache is a table, so that several server processes share it; a unique key decides races.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Engine, String, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import write_transaction
from carnet.registry.schema import Base
from carnet.security.vihf import INVALID_SECURITY, Claims, TokenError


class AssertionUseRow(Base):
    __tablename__ = "xua_assertion_use"
    issuer: Mapped[str] = mapped_column(String(512), primary_key=True)
    assertion_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    # After this, the assertion is refused as expired or too old: the row may go.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def check(engine: Engine, claims: Claims, every_assertion: bool, now: datetime | None = None) -> None:
    """Record a single-use assertion's first use; TokenError on any later one."""
    if not (claims.one_time_use or every_assertion):
        return
    if not claims.token_id or claims.expires_at is None:
        raise TokenError(
            "a single-use assertion needs an ID and a validity to be remembered", INVALID_SECURITY
        )
    now = now or datetime.now(UTC)
    issuer = claims.issuer or ""
    try:
        with write_transaction(engine) as session:
            session.execute(delete(AssertionUseRow).where(AssertionUseRow.expires_at < now))
            session.execute(
                insert(AssertionUseRow).values(
                    issuer=issuer, assertion_id=claims.token_id, expires_at=claims.expires_at
                )
            )
    except IntegrityError as exc:
        raise TokenError(
            f"assertion {claims.token_id} of {issuer or 'an unnamed issuer'} was already presented: a "
            "single-use assertion is accepted once",
            INVALID_SECURITY,
        ) from exc
