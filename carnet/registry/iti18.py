"""ITI-18 Registry Stored Query: AdhocQueryRequest in, AdhocQueryResponse out.

The same engine (``storedquery.queries``) serves the MHD facade; this module is only the ebRIM
binding: read the request, run it under the caller's principal, write LeafClass or ObjectRef.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from sqlalchemy.orm import Session

from carnet.registry.storedquery import queries
from carnet.registry.storedquery.params import split_value
from carnet.xds import response
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, XDSError
from carnet.xml import qname


@dataclass
class AdhocQuery:
    query_id: str
    slots: list[tuple[str, list[str]]]
    return_type: str = "LeafClass"
    home: str | None = None

    def patient_param(self) -> str | None:
        """The patient a Find query or GetAll names, unquoted (None for Get queries)."""
        for name, values in self.slots:
            if name.endswith("PatientId") or name == "$patientId":
                items = split_value(values[0]) if values else []
                return items[0] if items else None
        return None


def parse_request(el: etree._Element) -> AdhocQuery:
    if el.tag != qname(v.QUERY, "AdhocQueryRequest"):
        raise XDSError.of(ErrorCode.REGISTRY_ERROR, f"expected query:AdhocQueryRequest, got {el.tag}")
    option = el.find(qname(v.QUERY, "ResponseOption"))
    return_type = option.get("returnType", "LeafClass") if option is not None else "LeafClass"
    if return_type not in ("LeafClass", "ObjectRef"):
        raise XDSError.of(
            ErrorCode.REGISTRY_ERROR, f"returnType '{return_type}' is neither LeafClass nor ObjectRef"
        )
    aq = el.find(qname(v.RIM, "AdhocQuery"))
    if aq is None:
        raise XDSError.of(ErrorCode.REGISTRY_ERROR, "AdhocQueryRequest has no rim:AdhocQuery")
    slots = [
        (s.get("name") or "", [val.text or "" for val in s.iter(qname(v.RIM, "Value"))])
        for s in aq.findall(qname(v.RIM, "Slot"))
    ]
    return AdhocQuery(aq.get("id") or "", slots, return_type, aq.get("home"))


@dataclass
class QueryOutcome:
    query: queries.StoredQuery
    result: queries.QueryResult
    patient_id: str | None


def run(session: Session, request: AdhocQuery) -> QueryOutcome:
    query, params = queries.prepare(request.query_id, request.slots)
    result = queries.execute(session, query, params)
    patients = {h.patient_id for h in result.all() if h.patient_id}
    if request.return_type == "LeafClass" and len(patients) > 1 and not query.patient_scoped:
        raise XDSError.of(
            ErrorCode.RESULT_NOT_SINGLE_PATIENT,
            f"{query.name}: the LeafClass result spans {len(patients)} patients",
        )
    patient = next(iter(patients)) if len(patients) == 1 else None
    return QueryOutcome(query, result, patient)


def check_size(outcome: QueryOutcome, max_results: int) -> None:
    """XDSTooManyResults past ``max_results`` objects, counted once the policy has left out what the
    caller may not see: hidden documents neither show nor make a query too big."""
    if len(outcome.result) > max_results:
        raise XDSError.of(
            ErrorCode.TOO_MANY_RESULTS,
            f"{outcome.query.name} matched {len(outcome.result)} objects, more than this registry "
            f"returns ({max_results}); narrow the query",
        )


def render(outcome: QueryOutcome, return_type: str, home: str | None = None) -> str:
    hits = outcome.result.all()
    if return_type == "ObjectRef":
        return response.adhoc_query_response(response.object_ref(h.id, home) for h in hits)
    return response.adhoc_query_response(h.fragment for h in hits)
