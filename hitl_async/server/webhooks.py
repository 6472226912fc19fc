"""Webhooks: a run created with `webhook=URL` has its record and final values POSTed there when
it ends, as LangGraph's server does. The URL is checked when the run is created, under the
same policy (`langgraph.json` `webhooks.url`: `allowed_domains`, `allowed_ports`,
`require_https`, `max_url_length`, `disable_loopback` (default true), `disable_private_ips`),
and refused with LangGraph's 422 messages: a request cannot make the server call itself or
an address the policy blocks. Relative URLs (LangGraph's in-process calls) are refused."""

from __future__ import annotations

import ipaddress
import logging
import socket
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import anyio

from hitl_async.server.errors import unprocessable

__all__ = ["WebhookPolicy", "check_webhook", "send_webhook"]

log = logging.getLogger("hitl_async.server")

_LOCALHOST_NAMES = frozenset({"localhost", "localhost.localdomain", "host.docker.internal"})
_CLOUD_METADATA = frozenset({"169.254.169.254", "fd00:ec2::254"})
_SEND_TIMEOUT = 10.0


@dataclass(frozen=True)
class WebhookPolicy:
    """Which webhook URLs runs may name (LangGraph's `webhooks.url` keys and defaults)."""

    allowed_domains: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = ()
    require_https: bool = False
    max_url_length: int = 2048
    disable_loopback: bool = True
    disable_private_ips: bool = False

    @classmethod
    def from_config(cls, webhooks: Mapping[str, Any] | None) -> WebhookPolicy:
        """The policy of a `langgraph.json` `webhooks` section (None: the defaults)."""
        url = (webhooks or {}).get("url")
        if not isinstance(url, Mapping):
            return cls()
        return cls(
            allowed_domains=tuple(str(d).lower() for d in url.get("allowed_domains") or ()),
            allowed_ports=tuple(int(p) for p in url.get("allowed_ports") or ()),
            require_https=bool(url.get("require_https", True)),
            max_url_length=int(url.get("max_url_length", 2048)),
            disable_loopback=bool(url.get("disable_loopback", True)),
            disable_private_ips=bool(url.get("disable_private_ips", False)),
        )

    def allows_domain(self, host: str) -> bool:
        if not self.allowed_domains:
            return True
        return any(
            host == d or (d.startswith("*.") and host.endswith(d[1:])) for d in self.allowed_domains
        )


def _blocked(address: str, policy: WebhookPolicy) -> str | None:
    """Why an address may not be called (LangGraph's reason), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if str(ip) in _CLOUD_METADATA:
        return "cloud metadata endpoint"
    if ip.is_loopback:
        return "loopback IP range" if policy.disable_loopback else None
    if ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "blocked IP range"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGN):
        return "private IP range" if policy.disable_private_ips else None
    return None


_CGN = ipaddress.IPv4Network("100.64.0.0/10")


async def check_webhook(url: str, policy: WebhookPolicy) -> None:
    """422 unless the policy lets runs call `url` (its host resolved, every address checked)."""
    if len(url) > policy.max_url_length:
        raise unprocessable(f"Webhook URL longer than {policy.max_url_length} characters")
    if url.startswith("/"):
        raise unprocessable(
            "relative webhook URLs (calls into this server) are not supported by hitl serve"
        )
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        raise unprocessable("Webhook host blocked: scheme must be http or https")
    if policy.require_https and scheme != "https":
        raise unprocessable("Webhook must use https")
    try:
        port = parsed.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise unprocessable("Invalid webhook port") from None
    if policy.allowed_ports and port not in policy.allowed_ports:
        raise unprocessable(f"Webhook port {port} not allowed")
    host = (parsed.hostname or "").lower()
    if not host:
        raise unprocessable(f"Invalid webhook hostname '{host}'")
    if not policy.allows_domain(host):
        raise unprocessable("Webhook domain not allowed")
    if host in _LOCALHOST_NAMES:
        if policy.disable_loopback:
            raise unprocessable("Webhook host blocked: loopback IP range")
        return
    try:
        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise unprocessable("Webhook host blocked: DNS resolution failed") from None
    for *_, sockaddr in found:
        reason = _blocked(str(sockaddr[0]), policy)
        if reason is not None:
            raise unprocessable(f"Webhook host blocked: {reason}")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead anywhere the policy forbids: treat it as the answer."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with _OPENER.open(request, timeout=_SEND_TIMEOUT):
        pass


async def send_webhook(url: str, payload: Mapping[str, Any], policy: WebhookPolicy) -> None:
    """POST `payload` as JSON to `url`, checked again under `policy` first (the host's
    addresses may have changed since the run was created), in a worker thread (the standard
    library's client, no redirects followed); a failure is logged, never raised."""
    from hitl_async.server.encoding import dumps

    try:
        await check_webhook(url, policy)
        with anyio.fail_after(_SEND_TIMEOUT + 1):
            await anyio.to_thread.run_sync(_post, url, dumps(dict(payload)).encode())
    except Exception as exc:
        log.warning("webhook %s for run %s failed: %s", url, payload.get("run_id"), exc)
