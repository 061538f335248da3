"""``meshgate serve`` over TLS from certificate files, and mTLS: a real server process, real
TLS clients, certificates made in the test."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshgate.config import ConfigError, load_settings
from tests.conftest import ADMIN_KEY, free_port


def write_pem(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def issue(
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif issuer is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1, a client certificate of that CA and one of
    another CA."""
    d = tmp_path_factory.mktemp("pki")
    ca = issue("meshgate test CA", None)
    write_pem(d / "ca", *ca)
    write_pem(d / "server", *issue("meshgate", ca, server=True))
    write_pem(d / "client", *issue("frontend", ca))
    rogue = issue("rogue CA", None)
    write_pem(d / "rogue", *issue("intruder", rogue))
    return d


class TlsServer:
    def __init__(self, data_dir: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "server.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "meshgate", "serve"],
            env={
                **os.environ,
                "MESHGATE_PORT": str(self.port),
                "MESHGATE_DATA_DIR": str(data_dir),
                "MESHGATE_ADMIN_KEY": ADMIN_KEY,
                **env,
            },
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, check: ssl.SSLContext, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                httpx.get(self.url + "/healthz", verify=check, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def context(pki: Path, client: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if client:
        ctx.load_cert_chain(str(pki / f"{client}.crt"), str(pki / f"{client}.key"))
    return ctx


@pytest.fixture
def mtls_server(pki: Path, tmp_path: Path) -> Iterator[TlsServer]:
    server = TlsServer(
        tmp_path / "data",
        {
            "MESHGATE_TLS__CERTFILE": str(pki / "server.crt"),
            "MESHGATE_TLS__KEYFILE": str(pki / "server.key"),
            "MESHGATE_TLS__CLIENT_CA": str(pki / "ca.crt"),
            "MESHGATE_TLS__CLIENT_CERT": "required",
        },
    )
    try:
        server.wait_ready(context(pki, "client"))
        yield server
    finally:
        server.stop()


def test_mtls_admits_only_clients_with_a_certificate_of_the_ca(
    pki: Path, mtls_server: TlsServer
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    ok = httpx.get(mtls_server.url + "/v1/whoami", headers=headers, verify=context(pki, "client"))
    assert ok.status_code == 200 and ok.json()["tenant"]
    assert ok.extensions["http_version"] in (b"HTTP/1.1", b"HTTP/1.0")
    for refused in (context(pki), context(pki, "rogue")):  # no certificate, another CA's
        with pytest.raises(httpx.HTTPError):
            httpx.get(mtls_server.url + "/healthz", verify=refused, timeout=5).raise_for_status()
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port
        httpx.get(f"http://127.0.0.1:{mtls_server.port}/healthz", timeout=5).raise_for_status()
    # The server's certificate is checked by the client too: a client trusting another CA
    # refuses the server.
    stranger = ssl.create_default_context(cafile=str(pki / "rogue.crt"))
    with pytest.raises(httpx.ConnectError):
        httpx.get(mtls_server.url + "/healthz", verify=stranger, timeout=5)


def test_tls_settings_are_checked_at_start(pki: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="go together"):
        load_settings(None, tls={"certfile": str(pki / "server.crt")})
    with pytest.raises(ConfigError, match="client_ca"):
        load_settings(
            None,
            tls={
                "certfile": str(pki / "server.crt"),
                "keyfile": str(pki / "server.key"),
                "client_cert": "required",
            },
        )
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(None, tls={"certfile": str(tmp_path / "x"), "keyfile": str(tmp_path / "y")})
