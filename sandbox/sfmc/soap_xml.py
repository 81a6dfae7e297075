"""SOAP 1.1 plumbing: read any client's envelope by local name, write SFMC-shaped answers.

Requests are read by local name only, so ``ns0:``-prefixed zeep envelopes and hand-written
default-namespace ones look the same. Answers use the partner namespace as the default
namespace and unprefixed ``xsi:type`` values, like the recorded SFMC responses.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from lxml import etree
from starlette.responses import Response

from sandbox.sfmc.state import sfmc_time

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PARTNER = "http://exacttarget.com/wsdl/partnerAPI"
APIFAULT = "urn:fault.partner.exacttarget.com"

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


class BadEnvelope(Exception):
    """The body is not a SOAP envelope we can read."""


# --- reading ------------------------------------------------------------------------------


def local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def find(el: etree._Element | None, *names: str) -> etree._Element | None:
    """Follow a path of local names (first match at each step)."""
    for name in names:
        if el is None:
            return None
        el = next((c for c in el if local(c) == name), None)
    return el


def find_all(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else [c for c in el if local(c) == name]


def text(el: etree._Element | None, *names: str) -> str | None:
    found = find(el, *names) if names else el
    if found is None or found.text is None:
        return None
    return found.text.strip()


def xsi_type(el: etree._Element) -> str | None:
    value = el.get(f"{{{XSI}}}type")
    return value.split(":")[-1] if value else None


def parse_envelope(raw: bytes) -> tuple[etree._Element | None, etree._Element]:
    """(Header, the operation element in Body)."""
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise BadEnvelope(str(exc)) from exc
    if local(root) != "Envelope":
        raise BadEnvelope("the root element is not a SOAP Envelope")
    body = find(root, "Body")
    operation = (
        next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
    )
    if operation is None:
        raise BadEnvelope("the SOAP Body is empty")
    return find(root, "Header"), operation


def find_deep(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    return next((c for c in el.iter() if local(c) == name), None)


# --- writing ------------------------------------------------------------------------------


def _default_ns(uri: str) -> Any:
    """``{None: uri}``: lxml's default-namespace map (its stubs reject a None key)."""
    return {None: uri}


def new_message(name: str) -> etree._Element:
    return etree.Element(f"{{{PARTNER}}}{name}", nsmap=_default_ns(PARTNER))


def sub(
    parent: etree._Element,
    name: str,
    value: object = None,
    *,
    type_: str | None = None,
    nil: bool = False,
) -> etree._Element:
    """Append ``<name>`` in the partner namespace; ``None`` with ``nil`` writes xsi:nil."""
    el = etree.SubElement(parent, f"{{{PARTNER}}}{name}")
    if type_:
        el.set(f"{{{XSI}}}type", type_)
    if value is None:
        if nil:
            el.set(f"{{{XSI}}}nil", "true")
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif isinstance(value, datetime):
        el.text = sfmc_time(value)
    else:
        el.text = str(value)
    return el


def _envelope(action: str | None) -> tuple[etree._Element, etree._Element]:
    nsmap = {"soap": SOAP_ENV, "xsi": XSI, "xsd": XSD, "wsa": WSA}
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap=nsmap)
    header = etree.SubElement(env, f"{{{SOAP_ENV}}}Header")
    actions = {
        f"{{{WSA}}}Action": action or "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault",
        f"{{{WSA}}}MessageID": f"urn:uuid:{uuid.uuid4()}",
        f"{{{WSA}}}RelatesTo": f"urn:uuid:{uuid.uuid4()}",
        f"{{{WSA}}}To": "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous",
    }
    for tag, value in actions.items():
        etree.SubElement(header, tag).text = value
    return env, etree.SubElement(env, f"{{{SOAP_ENV}}}Body")


def _xml_response(env: etree._Element, status: int) -> Response:
    payload = etree.tostring(env, xml_declaration=True, encoding="utf-8")
    return Response(payload, status_code=status, media_type="text/xml; charset=utf-8")


def soap_response(message: etree._Element, action: str) -> Response:
    env, body = _envelope(f"{action}Response")
    body.append(message)
    return _xml_response(env, 200)


def soap_fault(
    code: str,
    message: str,
    *,
    actor: str,
    apifault: tuple[int, str] | None = None,
) -> Response:
    """A SOAP 1.1 Fault, always HTTP 500.

    ``code`` is ``Security`` (``q0:Security``, as recorded), ``Server`` or ``Client``.
    Only server faults carry ``detail/apifault`` (reference §1.8).
    """
    env, body = _envelope(None)
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    if code == "Security":
        etree.SubElement(fault, "faultcode", nsmap={"q0": WSSE}).text = "q0:Security"
    else:
        etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = message
    etree.SubElement(fault, "faultactor").text = actor
    if apifault is not None:
        detail = etree.SubElement(fault, "detail")
        api = etree.SubElement(detail, f"{{{APIFAULT}}}apifault", nsmap=_default_ns(APIFAULT))
        etree.SubElement(api, f"{{{APIFAULT}}}Code").text = str(apifault[0])
        etree.SubElement(api, f"{{{APIFAULT}}}Message").text = apifault[1]
    return _xml_response(env, 500)
