"""HTTP plumbing for the Instagram adapter: default timeouts, request counting, the local-double redirect, and
a connection of its own for each write.

Kept free of instagrapi imports so tests and the demo can use it on any ``requests.Session``.

Writes are never re-sent by libcurl
-----------------------------------
Read from instagrapi 3.2.2 (``instagrapi/transports.py``), curl_cffi 0.17.0 and its libcurl 8.23.0
(curl-impersonate, nghttp2 1.63) and checked against a local TLS server (``tests/integration/test_transport.py``):

- instagrapi's private session is a ``requests.Session`` whose ``https://`` adapter (``_CurlH2Adapter``) sends
  through one ``curl_cffi.requests.Session`` (its ``client`` attribute): HTTP/2 only, and libcurl keeps the
  connection between requests.
- When a request goes out on a *reused* connection and that connection dies before the first byte of an answer
  (the server read the request, then closed or reset it), libcurl sends the request again on a fresh connection
  by itself (``Curl_retry_request``: "Connection died, retrying a fresh connect"), POSTs included, on HTTP/2 and
  HTTP/1.1 alike, whether the server sent a FIN or an RST. curl_cffi reports one response, instagrapi one request,
  we count one: a like could reach Instagram twice, and if the second copy is answered nobody ever learns it.
- No option of this libcurl turns that retry off (``CURLOPT_FORBID_RETRY_ON_REUSE`` is only proposed, curl pull
  request 18417: not in curl_cffi's ``CurlOpt`` nor in its libcurl). The retry needs a *reused* connection
  (``conn->bits.reuse`` in ``lib/transfer.c``), so a write goes out on a new connection
  (``CURLOPT_FRESH_CONNECT``), which that retry never applies to, and the connection is closed after the answer
  (``CURLOPT_FORBID_REUSE``) so idle connections do not pile up in the pool. A write whose connection dies then
  fails once, as a connection error: the adapter raises ``NetworkError`` and the pass treats the like as
  unknown. (libcurl's other retry, for an HTTP/2 stream the server refused with ``REFUSED_STREAM``, stays: there
  the server says it did not process the request.)
- curl_cffi's ``Session.request`` takes no per-request curl options, but it applies ``session.curl_options``
  on every request and resets its handle after each: :class:`FreshConnections` adds the two options to that
  dict around one request and removes them after. The adapter is looked up on every request, so the options
  reach whatever adapter is mounted at that moment: ``set_settings()`` and ``init()`` mount a new curl adapter
  when the saved ``private_transport`` differs.
- ``requests``' own adapter (urllib3, the transport against a local double) re-sends only through its ``Retry``,
  which the adapter zeroes (instagrapi's default, 3 with POST allowed, would re-send a like): trusted only when
  it allows no retry. Any other adapter (instagrapi's ``utls``) is refused, not trusted.
- Cost: one TCP + TLS handshake (and one ``CONNECT`` through a proxy) per write; reads keep their connection
  (a re-sent read is harmless). ``python -m bench.transport`` measures it against the local TLS front.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

# Hosts instagrapi talks to: private API, the login host, and the public web host.
INSTAGRAM_HOSTS = ("i.instagram.com", "b.i.instagram.com", "www.instagram.com")


class RedirectAdapter(HTTPAdapter):
    """Sends ``https://<instagram host>/<path>`` to ``<base_url>/<path>`` (a local double).

    The Host header set by instagrapi is kept, so the double can tell the hosts apart.
    No retries: we own backoff.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__(max_retries=0)
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.headers.setdefault("Host", parts.netloc)
        request.url = f"{self.base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        kwargs["proxies"] = {}
        return super().send(request, *args, **kwargs)


def redirect_to(session: requests.Session, base_url: str) -> None:
    """Mount the redirect on every Instagram host prefix (longest prefix wins over ``https://``)."""
    adapter = RedirectAdapter(base_url)
    for host in INSTAGRAM_HOSTS:
        session.mount(f"https://{host}/", adapter)


def with_default_timeout(session: requests.Session, timeout: float) -> None:
    """Give every request of ``session`` a timeout unless the caller set one (instagrapi sets none)."""
    original = session.request

    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = timeout
        return original(method, url, **kwargs)

    session.request = request  # type: ignore[method-assign,assignment]  # instance-level wrap, on purpose


def count_requests(session: requests.Session, on_request: Callable[[], None]) -> None:
    """Call ``on_request`` before every request of ``session``: the adapter's count of HTTP requests sent."""
    original = session.request

    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        on_request()
        return original(method, url, **kwargs)

    session.request = request  # type: ignore[method-assign,assignment]  # instance-level wrap, on purpose


class FreshConnections:
    """Requests of ``session`` sent inside ``with fresh(): ...`` each go out on a new connection, closed after its
    answer, so libcurl can never re-send them (see the module docstring). Outside the block nothing changes."""

    def __init__(self, session: requests.Session) -> None:
        self._active = False
        original = session.request

        def request(method: str, url: str, **kwargs: Any) -> requests.Response:
            if not self._active:
                return original(method, url, **kwargs)
            with fresh_connection(session.get_adapter(url)):
                return original(method, url, **kwargs)

        session.request = request  # type: ignore[method-assign,assignment]  # instance-level wrap, on purpose

    @contextmanager
    def __call__(self) -> Iterator[None]:
        self._active = True
        try:
            yield
        finally:
            self._active = False


@contextmanager
def fresh_connection(adapter: Any) -> Iterator[None]:
    """The next request through ``adapter`` (a ``requests`` transport adapter) opens a connection of its own and
    closes it after the answer; RuntimeError for an adapter we cannot tell how it re-sends."""
    from curl_cffi import CurlOpt
    from curl_cffi.requests import Session as CurlSession

    curl = getattr(adapter, "client", None)
    if not isinstance(curl, CurlSession):
        urllib3 = type(adapter).send in (HTTPAdapter.send, RedirectAdapter.send)
        if urllib3 and adapter.max_retries.total == 0:
            yield  # urllib3 re-sends only through its Retry, and this one allows none
            return
        raise RuntimeError(f"cannot send on a fresh connection through {type(adapter).__name__}")
    options = {CurlOpt.FRESH_CONNECT: 1, CurlOpt.FORBID_REUSE: 1}
    curl.curl_options.update(options)
    try:
        yield
    finally:
        for option in options:
            curl.curl_options.pop(option, None)
