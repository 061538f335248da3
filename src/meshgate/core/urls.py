"""Each backend port names the URL schemes it accepts; a URL in the wrong setting is a config
error naming the key, found at start rather than on first use."""

from __future__ import annotations


class UnsupportedUrl(ValueError):
    """A setting holds a URL its backend port cannot open."""


def check_scheme(url: str, accepted: tuple[str, ...], *, key: str) -> str:
    """Returns the scheme of ``url``; raises :class:`UnsupportedUrl` naming ``key`` if the
    port behind ``key`` does not accept it."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in accepted:
        shown = scheme or url[:40]
        raise UnsupportedUrl(
            f"{key}: {shown!r} is not a URL this backend accepts "
            f"(one of: {', '.join(s + '://' for s in accepted)})"
        )
    return scheme
