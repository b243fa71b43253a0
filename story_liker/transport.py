"""HTTP plumbing for the Instagram adapter: default timeouts, request counting and the local-double redirect.

Kept free of instagrapi imports so tests and the demo can use it on any ``requests.Session``.
"""

from __future__ import annotations

from collections.abc import Callable
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
