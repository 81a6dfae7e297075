"""A thin client for the SFMC partner SOAP API (Retrieve, Perform, Schedule) on zeep.

zeep renders the envelopes from a WSDL (by default the project's own minimal one in
``wsdl/automation-bot.wsdl``; the full partner WSDL works too) and posts them through an
:class:`~zeep.transports.AsyncTransport` over the injected :class:`httpx.AsyncClient`.
The response is parsed here, not by zeep's fault handling, so that every outcome becomes
one of the project's errors (reference sfmc.md §1.8, §2, §4, §5):

* Security fault "Token Expired" (HTTP 500): refresh the token once, retry once.
* Security fault otherwise: :class:`AuthError` (code ``Security``).
* Server fault with ``detail/apifault/Code`` 17: :class:`RateLimited` (code ``17``).
* Other Server fault: :class:`ProviderError` with the apifault code (retryable for 2 and 9).
* Client fault: :class:`ProviderError` (code ``Client``).
* HTTP error without a SOAP body, or a body that is not XML: retryable ``ProviderError``.
* ``OverallStatus`` starting with ``Error`` (HTTP 200), or a result with
  ``StatusCode == "Error"``: :class:`ProviderError` with the provider's code and text.

Requests are built by zeep from the WSDL. Replies are read straight from the XML into
plain dicts and lists by element name (:func:`_reply_message`): values stay text, and
elements the WSDL does not know (real responses carry ``IsPlatformObject``) are kept like
any other.

Only Retrieve is retried (bounded, with backoff); Perform and Schedule are sent once,
apart from the single retry after a refreshed token.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import zeep
import zeep.wsdl
import zeep.xsd
from lxml import etree
from zeep.transports import AsyncTransport, Transport

from bot.domain.errors import AuthError, ProviderError, RateLimited
from providers.http import CallLimit
from providers.sfmc.auth import SfmcToken, TokenProvider

PROVIDER = "SFMC"
PARTNER_NS = "http://exacttarget.com/wsdl/partnerAPI"
FAULT_NS = "urn:fault.partner.exacttarget.com"
FUELOAUTH_NS = "http://exacttarget.com"
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
BINDING = f"{{{PARTNER_NS}}}SoapBinding"

#: Explicit timeouts for SOAP calls (SFMC's guidance: 120 s sync; we stay well below).
DEFAULT_SOAP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)

#: apifault codes worth retrying later: 2 UnexpectedError, 9 InMaintenance (17 is RateLimited).
RETRYABLE_API_FAULTS = frozenset({"2", "9"})
RATE_LIMITED_API_FAULT = "17"

#: The full partner WSDL imports this schema; it is served as an empty stub, offline.
FAULT_XSD_URL = "https://webservice.exacttarget.com/ETFrameworkFault.xsd"
_FAULT_XSD_STUB = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
    b'targetNamespace="urn:fault.partner.exacttarget.com" elementFormDefault="qualified"/>\n'
)

log = logging.getLogger(__name__)


def default_wsdl_path() -> Path:
    """The project's own minimal WSDL, shipped inside the package."""
    resource = resources.files("providers.sfmc").joinpath("wsdl", "automation-bot.wsdl")
    return Path(str(resource))


# --------------------------------------------------------------------------- loading


class OfflineLoader(Transport):
    """Loads WSDL/XSD files from disk only; never touches the network.

    The partner WSDL's import of ``ETFrameworkFault.xsd`` gets an empty stub schema (the
    adapter parses fault details itself); any other remote URL is refused.
    """

    def __init__(self) -> None:
        self.cache = None
        self.logger = log
        self._close_session = False

    def load(self, url: str) -> bytes:
        if not url:
            raise ValueError("No url given to load")
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            if parsed.path.rsplit("/", 1)[-1].lower() == "etframeworkfault.xsd":
                return _FAULT_XSD_STUB
            raise OSError(f"refusing to fetch {url!r}: the SOAP adapter loads WSDLs offline only")
        path = parsed.path if parsed.scheme == "file" else url
        return Path(path).expanduser().read_bytes()

    def _load_remote_data(self, url: str) -> bytes:
        return self.load(url)


_SETTINGS = zeep.Settings(strict=False, xml_huge_tree=False, raw_response=True)
_documents: dict[Path, Any] = {}
_documents_lock = threading.Lock()


def load_document(path: Path) -> Any:
    """Parse (once per path and process) the WSDL at ``path``, offline."""
    resolved = path.resolve()
    with _documents_lock:
        document = _documents.get(resolved)
        if document is None:
            document = zeep.wsdl.Document(
                str(resolved),
                OfflineLoader(),  # type: ignore[arg-type]  # zeep annotates a class here
                settings=_SETTINGS,
            )
            _documents[resolved] = document
        return document


#: The client a SOAP call goes through (picked by the account's :class:`CallLimit`); zeep's
#: transport reads it, since zeep itself holds one transport per client.
_SENDING_CLIENT: contextvars.ContextVar[httpx.AsyncClient | None] = contextvars.ContextVar(
    "sfmc_soap_client", default=None
)


class _HttpxTransport(AsyncTransport):
    """zeep's AsyncTransport over an injected client, with an explicit operation timeout.

    Unlike the stock one it does not replace the injected client's headers, does not log
    envelopes (they carry the token) and does not close a client it does not own.
    """

    def __init__(self, client: httpx.AsyncClient, operation_timeout: httpx.Timeout) -> None:
        self.cache = None
        self.client = client
        self.operation_timeout = operation_timeout
        self.logger = log
        self._close_session = False
        self.loader = OfflineLoader()

    def load(self, url: str) -> bytes:
        return self.loader.load(url)

    async def post(self, address: str, message: bytes, headers: Mapping[str, str]) -> Any:
        client = _SENDING_CLIENT.get() or self.client
        return await client.post(
            address, content=message, headers=dict(headers), timeout=self.operation_timeout
        )

    async def aclose(self) -> None:
        return None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SoapResponse:
    """One Perform/Schedule/Retrieve answer as plain data."""

    operation: str
    overall_status: str
    request_id: str | None
    overall_status_message: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    request_ids: tuple[str, ...] = ()

    @property
    def status_message(self) -> str | None:
        """The first result's StatusMessage, else the overall message."""
        for result in self.results:
            message = result.get("StatusMessage")
            if message:
                return str(message)
        return self.overall_status_message


@dataclass(frozen=True)
class SimpleFilter:
    """A ``SimpleFilterPart``: ``property operator value(s)`` (Automation: equals / IN)."""

    property: str
    operator: str
    values: tuple[str, ...]

    @classmethod
    def equals(cls, prop: str, value: str) -> SimpleFilter:
        return cls(prop, "equals", (value,))

    @classmethod
    def in_(cls, prop: str, values: Iterable[str]) -> SimpleFilter:
        return cls(prop, "IN", tuple(values))


def _element_value(element: Any) -> Any:
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        return element.text
    out: dict[str, Any] = {}
    for child in children:
        name = etree.QName(child).localname
        value = _element_value(child)
        if name in out:
            existing = out[name]
            out[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[name] = value
    return out


# --------------------------------------------------------------------------- the client


class _TokenExpired(Exception):
    def __init__(self, error: AuthError) -> None:
        super().__init__(error.message)
        self.error = error


_SAFE_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "huge_tree": False,
    "remove_comments": True,
    "load_dtd": False,
}


class SoapClient:
    """Retrieve / Perform / Schedule for one business unit, with the token in the header."""

    def __init__(
        self,
        *,
        tokens: TokenProvider,
        http: httpx.AsyncClient,
        wsdl_path: Path | None = None,
        timeout: httpx.Timeout | float = DEFAULT_SOAP_TIMEOUT,
        read_attempts: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        limit: CallLimit | None = None,
    ) -> None:
        self._tokens = tokens
        self._http = http
        self._limit = limit or CallLimit()
        self._services: dict[str, Any] = {}
        self.wsdl_path = wsdl_path or default_wsdl_path()
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._read_attempts = max(1, read_attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._client: Any = None
        self._load_lock = asyncio.Lock()

    # -- zeep objects -------------------------------------------------------------------

    async def _zeep(self) -> Any:
        if self._client is None:
            async with self._load_lock:
                if self._client is None:
                    document = await asyncio.to_thread(load_document, self.wsdl_path)
                    self._client = zeep.AsyncClient(  # type: ignore[no-untyped-call]
                        document,
                        transport=_HttpxTransport(self._http, self._timeout),
                        settings=_SETTINGS,
                    )
        return self._client

    async def factory(self) -> Callable[..., Any]:
        """``make("Automation", ObjectID=...)``: a typed partner API value (renders xsi:type)."""
        client = await self._zeep()

        def make(type_name: str, /, **fields: Any) -> Any:
            return client.get_type(f"{{{PARTNER_NS}}}{type_name}")(**fields)

        return make

    # -- operations ----------------------------------------------------------------------

    async def retrieve(
        self,
        object_type: str,
        properties: Sequence[str],
        *,
        filter: SimpleFilter | None = None,
        max_pages: int = 100,
    ) -> SoapResponse:
        """All rows of ``object_type`` matching ``filter``, following MoreDataAvailable."""
        make = await self.factory()
        request: dict[str, Any] = {"ObjectType": object_type, "Properties": list(properties)}
        if filter is not None:
            request["Filter"] = make(
                "SimpleFilterPart",
                Property=filter.property,
                SimpleOperator=filter.operator,
                Value=list(filter.values),
            )
        rows: list[dict[str, Any]] = []
        request_ids: list[str] = []
        body = await self._read("Retrieve", {"RetrieveRequest": request})
        for _page in range(max_pages):
            rows.extend(body.results)
            if body.request_id:
                request_ids.append(body.request_id)
            if body.overall_status != "MoreDataAvailable" or not body.request_id:
                break
            continue_request = {"ObjectType": object_type, "ContinueRequest": body.request_id}
            body = await self._read("Retrieve", {"RetrieveRequest": continue_request})
        else:
            raise ProviderError(
                f"SFMC kept answering MoreDataAvailable after {max_pages} pages of "
                f"{object_type}; stopped paging",
                provider=PROVIDER,
            )
        return SoapResponse(
            operation="Retrieve",
            overall_status=body.overall_status,
            request_id=request_ids[0] if request_ids else body.request_id,
            overall_status_message=body.overall_status_message,
            results=rows,
            request_ids=tuple(request_ids),
        )

    async def perform(self, action: str, definitions: Sequence[Any]) -> SoapResponse:
        """``Perform`` (not retried). ``definitions`` are typed values from :meth:`factory`."""
        return await self._call(
            "Perform", {"Action": action, "Definitions": {"Definition": list(definitions)}}
        )

    async def schedule(
        self, action: str, schedule: Any, interactions: Sequence[Any]
    ) -> SoapResponse:
        """``Schedule`` (not retried). ``schedule`` is a typed ``ScheduleDefinition``."""
        return await self._call(
            "Schedule",
            {
                "Action": action,
                "Schedule": schedule,
                "Interactions": {"Interaction": list(interactions)},
            },
        )

    async def aclose(self) -> None:
        """Nothing to close: the HTTP client belongs to the caller."""
        self._client = None
        self._services.clear()

    # -- plumbing --------------------------------------------------------------------------

    async def _read(self, operation: str, kwargs: Mapping[str, Any]) -> SoapResponse:
        """A read with bounded retries on retryable failures (rate limits back off longer)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._call(operation, kwargs)
            except ProviderError as exc:
                if not exc.retryable or attempt >= self._read_attempts:
                    raise
                delay = self._backoff * 2 ** (attempt - 1)
                if isinstance(exc, RateLimited):
                    delay = max(delay * 2, exc.retry_after or 0.0)
                await self._sleep(min(self._max_backoff, delay))

    async def _call(self, operation: str, kwargs: Mapping[str, Any]) -> SoapResponse:
        token = await self._tokens.token()
        try:
            return await self._send(operation, token, kwargs)
        except _TokenExpired:
            fresh = await self._tokens.refresh(token)
            try:
                return await self._send(operation, fresh, kwargs)
            except _TokenExpired as again:
                raise again.error from None

    async def _send(
        self, operation: str, token: SfmcToken, kwargs: Mapping[str, Any]
    ) -> SoapResponse:
        client = await self._zeep()
        address = token.soap_instance_url + "Service.asmx"
        service = self._services.get(address)
        if service is None:
            service = self._services[address] = client.create_service(BINDING, address)
        header = etree.Element(f"{{{FUELOAUTH_NS}}}fueloauth", nsmap={None: FUELOAUTH_NS})  # type: ignore[dict-item]
        header.text = token.access_token.get_secret_value()
        try:
            async with self._limit.slot(self._http) as client:
                sending = _SENDING_CLIENT.set(client)
                try:
                    response = await getattr(service, operation)(_soapheaders=[header], **kwargs)
                finally:
                    _SENDING_CLIENT.reset(sending)
        except httpx.TimeoutException as exc:
            raise ProviderError(
                f"SFMC SOAP {operation} timed out",
                provider=PROVIDER,
                retryable=True,
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"Could not reach SFMC SOAP for {operation} ({type(exc).__name__})",
                provider=PROVIDER,
                retryable=True,
            ) from exc
        return self._parse(client, service, operation, response)

    def _parse(self, client: Any, service: Any, operation: str, response: Any) -> SoapResponse:
        status = int(response.status_code)
        envelope = _parse_envelope(response.content)
        if envelope is None:
            raise ProviderError(
                f"SFMC answered {operation} with HTTP {status} and a body that was not SOAP",
                provider=PROVIDER,
                code=str(status),
                http_status=status,
                retryable=True,
            )
        fault = envelope.find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault")
        if fault is not None:
            raise _fault_error(operation, fault, status)
        if status != 200:
            raise ProviderError(
                f"SFMC answered {operation} with HTTP {status}",
                provider=PROVIDER,
                code=str(status),
                http_status=status,
                retryable=status >= 500,
            )
        message = _reply_message(envelope, operation)
        if message is None:
            raise ProviderError(
                f"SFMC's {operation} response could not be read (no {operation}ResponseMsg)",
                provider=PROVIDER,
                http_status=status,
                retryable=True,
            )
        body = _element_value(message)
        return _to_response(operation, body if isinstance(body, dict) else {}, status)


def _reply_message(envelope: Any, operation: str) -> Any:
    """The ``{operation}ResponseMsg`` element of a reply's Body, or None.

    Replies are read straight from the XML (by element names, as plain dicts and lists):
    zeep's typed parse of a reply cost more CPU than the rest of a call together, and the
    adapters read every value as text anyway. Requests are still built by zeep from the
    WSDL."""
    body = envelope.find(f"{{{SOAP_ENV_NS}}}Body")
    if body is None:
        return None
    wanted = f"{operation}ResponseMsg"
    for child in body:
        if isinstance(child.tag, str) and etree.QName(child).localname == wanted:
            return child
    return None


def _parse_envelope(content: bytes | None) -> Any:
    if not content:
        return None
    parser = etree.XMLParser(**_SAFE_PARSER_OPTIONS)
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError:
        return None
    if root is None or root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        return None
    if root.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        return None
    return root


def _child_text(element: Any, name: str) -> str | None:
    for child in element.iter():
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            text = (child.text or "").strip()
            return text or None
    return None


def _fault_error(operation: str, fault: Any, status: int) -> Exception:
    faultcode = _child_text(fault, "faultcode") or ""
    code = faultcode.rsplit(":", 1)[-1] or "Fault"
    faultstring = _child_text(fault, "faultstring")
    detail = fault.find("detail")
    if detail is None:
        detail = next(
            (c for c in fault if isinstance(c.tag, str) and etree.QName(c).localname == "detail"),
            None,
        )
    api_code = api_message = None
    if detail is not None:
        apifault = next(
            (
                e
                for e in detail.iter()
                if isinstance(e.tag, str) and etree.QName(e).localname == "apifault"
            ),
            None,
        )
        if apifault is not None:
            api_code = _child_text(apifault, "Code")
            api_message = _child_text(apifault, "Message")
    message = api_message or faultstring
    if code == "Security":
        error = AuthError(
            f"SFMC refused the token for {operation}",
            provider=PROVIDER,
            code="Security",
            provider_message=faultstring,
            http_status=status,
        )
        if faultstring and "token expired" in faultstring.lower():
            return _TokenExpired(error)
        return error
    if code == "Server" and api_code == RATE_LIMITED_API_FAULT:
        return RateLimited(
            f"SFMC is rate limiting SOAP {operation} calls",
            provider=PROVIDER,
            code=RATE_LIMITED_API_FAULT,
            provider_message=message,
            http_status=status,
        )
    if code == "Server":
        return ProviderError(
            f"SFMC SOAP {operation} failed with a server fault",
            provider=PROVIDER,
            code=api_code or "Server",
            provider_message=message,
            http_status=status,
            retryable=api_code in RETRYABLE_API_FAULTS,
        )
    if code == "Client":
        return ProviderError(
            f"SFMC rejected the SOAP {operation} request",
            provider=PROVIDER,
            code="Client",
            provider_message=faultstring,
            http_status=status,
        )
    return ProviderError(
        f"SFMC SOAP {operation} failed with a {code} fault",
        provider=PROVIDER,
        code=code,
        provider_message=message,
        http_status=status,
    )


def _as_results(body: Mapping[str, Any], operation: str) -> list[dict[str, Any]]:
    results = body.get("Results")
    if operation != "Retrieve" and isinstance(results, dict):
        results = results.get("Result")
    if results is None:
        return []
    if isinstance(results, dict):
        return [results]
    return [r for r in results if isinstance(r, dict)]


_ERROR_STATUS = re.compile(r"^\s*(error|has errors)", re.IGNORECASE)


def _to_response(operation: str, body: Mapping[str, Any], status: int) -> SoapResponse:
    overall = str(body.get("OverallStatus") or "")
    results = _as_results(body, operation)
    response = SoapResponse(
        operation=operation,
        overall_status=overall,
        request_id=_str_or_none(body.get("RequestID")),
        overall_status_message=_str_or_none(body.get("OverallStatusMessage")),
        results=results,
    )
    for result in results:
        if str(result.get("StatusCode") or "").lower() == "error":
            code = _str_or_none(result.get("ErrorCode"))
            message = _str_or_none(result.get("StatusMessage"))
            raise ProviderError(
                f"SFMC {operation} failed"
                + (f": {message}" if message else "")
                + (f" (RequestID {response.request_id})" if response.request_id else ""),
                provider=PROVIDER,
                code=code,
                provider_message=message,
                http_status=status,
            )
    if _ERROR_STATUS.match(overall):
        text = overall
        if response.overall_status_message and response.overall_status_message not in text:
            text = f"{text}: {response.overall_status_message}"
        raise ProviderError(
            f"SFMC {operation} failed: {text}",
            provider=PROVIDER,
            code=None,
            provider_message=text,
            http_status=status,
        )
    if not overall:
        raise ProviderError(
            f"SFMC's {operation} response had no OverallStatus",
            provider=PROVIDER,
            http_status=status,
            retryable=True,
        )
    return response


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


__all__ = [
    "BINDING",
    "DEFAULT_SOAP_TIMEOUT",
    "FAULT_XSD_URL",
    "PARTNER_NS",
    "OfflineLoader",
    "SimpleFilter",
    "SoapClient",
    "SoapResponse",
    "default_wsdl_path",
    "load_document",
]
