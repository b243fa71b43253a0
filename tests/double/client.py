"""Pointing a real instagrapi client at the double (see the package docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from instagrapi import Client

    from tests.double.core import InstagramDouble


def point_client(client: Client, base_url: str, *, timeout: float | None = 5.0) -> Client:
    """Make a real instagrapi client talk to the double: no pacing sleeps, no retries, one
    HTTP request per call, a default HTTP timeout. Call AFTER ``set_settings``/``load_settings``."""
    from story_liker.ig.transport import redirect_to, with_default_timeout

    client.set_retry_config(
        request_timeout=0,
        session_retry_total=0,
        public_request_retries_count=1,
        public_request_retries_timeout=0,
    )
    client.delay_range = None
    for session in (client.private, client.public, client.graphql):
        redirect_to(session, base_url)
    if timeout is not None:
        with_default_timeout(client.private, timeout)
        with_default_timeout(client.public, timeout)
    return client


def new_client(ig: InstagramDouble, *, logged_in: bool = True, timeout: float | None = 5.0) -> Client:
    """A ``Client(private_transport="requests", with_challenge_flow=False)`` pointed at ``ig``,
    loaded with ``ig.settings()`` when ``logged_in``."""
    from instagrapi import Client

    client = Client(private_transport="requests", with_challenge_flow=False)
    if logged_in:
        client.set_settings(ig.settings())
    return point_client(client, ig.url, timeout=timeout)
