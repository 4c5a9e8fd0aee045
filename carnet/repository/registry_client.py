"""Forwarding a submission's metadata to a remote Document Registry by ITI-42.

Used when the repository runs alone (CARNET_REMOTE_REGISTRY_URL), on the caller's behalf: the
caller's XUA assertion goes along (XUA propagation). The registry's RegistryErrors
come back to the ITI-41 sender unchanged; a registry that cannot be reached is
XDSRegistryNotAvailable.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from lxml import etree

from carnet.soap.envelope import envelope
from carnet.xds import ebrim
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, RegistryError, XDSError
from carnet.xds.model import Submission
from carnet.xml import UnsafeXMLError, parse, qname

TIMEOUT_S = 60


def register_remote(url: str, sub: Submission, assertion: str | None = None) -> list[RegistryError]:
    """Send ITI-42; return the registry's warnings, raise XDSError with its errors on Failure.

    ``assertion``: the ITI-41 caller's XUA assertion, presented to the registry unchanged, so the
    registry decides and audits the submission as the caller's (without it, as an anonymous one).
    """
    body = etree.tostring(ebrim.render_submit_objects_request(sub), encoding="unicode")
    data = envelope(body, v.ACTION_ITI42, assertion=assertion)
    if not url.startswith(("http://", "https://")):
        raise XDSError.of(ErrorCode.REGISTRY_NOT_AVAILABLE, f"registry URL {url!r} is not http(s)")
    req = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=data,
        method="POST",
        headers={"Content-Type": f'application/soap+xml; charset=UTF-8; action="{v.ACTION_ITI42}"'},
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 - scheme checked above
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise XDSError.of(
            ErrorCode.REGISTRY_NOT_AVAILABLE, f"registry {url} could not be reached: {exc}"
        ) from exc
    try:
        root = parse(raw)
    except UnsafeXMLError as exc:
        raise XDSError.of(
            ErrorCode.REGISTRY_NOT_AVAILABLE, f"registry {url} answered no SOAP message"
        ) from exc
    rr = root.find(f".//{qname(v.RS, 'RegistryResponse')}")
    if rr is None:
        reason = root.findtext(f".//{{{v.SOAP12}}}Text") or "no RegistryResponse"
        raise XDSError.of(ErrorCode.REGISTRY_NOT_AVAILABLE, f"registry {url} refused the request: {reason}")
    errors = [
        RegistryError(
            e.get("errorCode") or ErrorCode.REGISTRY_ERROR,
            e.get("codeContext") or "",
            e.get("location") or "",
            warning=(e.get("severity") == v.SEVERITY_WARNING),
        )
        for e in rr.iter(qname(v.RS, "RegistryError"))
    ]
    if rr.get("status") != v.SUCCESS:
        raise XDSError(errors or [RegistryError(ErrorCode.REGISTRY_ERROR, "the registry answered Failure")])
    return errors
