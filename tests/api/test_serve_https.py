"""``wangge serve --cert --key`` serves HTTPS (phones need a secure context for "locate me")."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_serve_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WANGGE_SECRET_KEY": "https-test", "WANGGE_INSTANCE_PATH": str(tmp_path / "instance"),
           "WANGGE_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(port),
                             "--cert", str(cert), "--key", str(key)], env=env, cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/login", context=trust, timeout=2) as r:
                    assert r.status == 200 and "登录" in r.read().decode("utf-8")
                break
            except (ConnectionError, OSError):
                time.sleep(0.1)
        else:
            pytest.fail("the HTTPS server did not answer")
        with pytest.raises(OSError):  # plain HTTP on the TLS port is not served
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2).read()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode("utf-8", "replace")
    assert f"https://127.0.0.1:{port}/" in out


def test_cert_without_key_is_refused(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from api.cli import main

    cert, _ = _self_signed(tmp_path)
    env = {"WANGGE_SECRET_KEY": "x", "WANGGE_INSTANCE_PATH": str(tmp_path / "i"),
           "WANGGE_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    r = CliRunner().invoke(main, ["serve", "--cert", str(cert)], env=env)
    assert r.exit_code == 2 and "--cert and --key go together" in r.output
