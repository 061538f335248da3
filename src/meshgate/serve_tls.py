"""TLS for ``meshgate serve`` (``tls:`` in meshgate.yaml): certificate files, and optional
verification of client certificates (mTLS)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TlsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    certfile: Path | None = Field(
        None, description="Server certificate chain (PEM); serving is HTTPS when set."
    )
    keyfile: Path | None = Field(None, description="The certificate's private key (PEM).")
    client_ca: Path | None = Field(
        None, description="CA bundle (PEM) that client certificates must chain to."
    )
    client_cert: Literal["none", "optional", "required"] = Field(
        "none",
        description="Ask for a client certificate: 'required' refuses the handshake without a "
        "valid one (mTLS); 'optional' verifies one when sent.",
    )

    @model_validator(mode="after")
    def _complete(self) -> TlsConfig:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("certfile and keyfile go together")
        if self.client_cert != "none" and (self.certfile is None or self.client_ca is None):
            raise ValueError("client certificates need certfile, keyfile and client_ca")
        for path in (self.certfile, self.keyfile, self.client_ca):
            if path is not None and not path.is_file():
                raise ValueError(f"{path}: no such file")
        return self

    @property
    def enabled(self) -> bool:
        return self.certfile is not None


def uvicorn_ssl_options(tls: TlsConfig) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that serve HTTPS as configured."""
    if not tls.enabled:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": str(tls.certfile),
        "ssl_keyfile": str(tls.keyfile),
    }
    if tls.client_cert != "none":
        options["ssl_ca_certs"] = str(tls.client_ca)
        options["ssl_cert_reqs"] = (
            ssl.CERT_REQUIRED if tls.client_cert == "required" else ssl.CERT_OPTIONAL
        )
    return options
