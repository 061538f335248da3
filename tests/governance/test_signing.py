"""The checkpoint key: generated private on first start, configurable, rotatable."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meshgate.governance.config import AuditConfig
from meshgate.governance.signing import KEY_FILE, SigningKeyError, load_signer, public_b64
from tests.governance.conftest import Clock, open_trail


def raw_b64(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def test_a_generated_key_is_kept_private_in_data_dir_and_reused(tmp_path: Path) -> None:
    first = load_signer(AuditConfig(), tmp_path)
    mode = stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    assert load_signer(AuditConfig(), tmp_path).key_id == first.key_id
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


def test_a_configured_key_wins_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    signer = load_signer(AuditConfig(signing_key=raw_b64(key)), tmp_path)
    assert signer.describe()["public_key"] == public_b64(key.public_key())
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(SigningKeyError, match="Ed25519 private key"):
        load_signer(AuditConfig(signing_key="bm90IGEga2V5"), tmp_path)
    with pytest.raises(SigningKeyError, match="Ed25519 public key"):
        load_signer(AuditConfig(trusted_public_keys=["-----BEGIN PUBLIC KEY-----"]), tmp_path)


async def test_checkpoints_of_a_rotated_key_verify_while_that_key_is_trusted(
    sql_url: str, tmp_path: Path
) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    clock = Clock()
    trail = await open_trail(sql_url, tmp_path, clock, signing_key=raw_b64(old))
    for i in range(7):
        await trail.audit.record(actor="a", tenant="t", action="x.y", resource=f"r/{i}", details={})
    await trail.sql.close()

    rotated = await open_trail(
        sql_url,
        tmp_path,
        clock,
        signing_key=raw_b64(new),
        trusted_public_keys=[public_b64(old.public_key())],
    )
    await rotated.add(5)
    result = await rotated.audit.verify()
    assert result["ok"] is True and result["checkpoints"]["count"] == 2
    await rotated.sql.close()

    forgetful = await open_trail(sql_url, tmp_path, clock, signing_key=raw_b64(new))
    result = await forgetful.audit.verify()
    assert result["ok"] is False and result["first_bad"]["sequence"] == 5
    assert "unknown key" in result["first_bad"]["reason"]
    await forgetful.sql.close()
