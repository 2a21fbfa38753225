"""A throw-away certificate authority and server certificate for loopback TLS.

google-genai always rewrites the Live API base URL to ``wss://`` (API-key mode
has no plain ``ws://``), so the Gemini emulator must serve TLS and the client
must trust it. We mint a private CA and a leaf certificate with SAN
``IP:127.0.0.1`` and ``DNS:localhost`` at start-up (trustme, in memory, a few ms),
write the PEM files into a private temp dir, and hand out:

* ``server_context()`` for the emulator's listening socket,
* ``client_context()`` an ``ssl.SSLContext`` trusting only this CA, for
  ``HttpOptions(async_client_args={"ssl": ctx})`` / httpx ``verify=ctx``,
* ``ca_file`` for ``SSL_CERT_FILE`` when a client reads the environment.

Nothing is installed system-wide; ``close()`` deletes the files.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import trustme

HOSTS = ("127.0.0.1", "localhost")


@dataclass
class LoopbackTLS:
    """CA + leaf certificate files for 127.0.0.1/localhost in a temp dir."""

    directory: Path
    ca_file: Path
    cert_file: Path
    key_file: Path
    _ca: trustme.CA = field(repr=False)

    @classmethod
    def create(cls, hosts: tuple[str, ...] = HOSTS) -> LoopbackTLS:
        ca = trustme.CA(organization_name="TARS loopback emulator CA")
        leaf = ca.issue_cert(*hosts)
        directory = Path(tempfile.mkdtemp(prefix="tars-sim-tls-"))
        ca_file = directory / "ca.pem"
        cert_file = directory / "cert.pem"  # leaf + chain
        key_file = directory / "key.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        leaf.private_key_pem.write_to_path(str(key_file))
        with cert_file.open("wb") as fh:
            for blob in leaf.cert_chain_pems:
                fh.write(blob.bytes())
        return cls(directory, ca_file, cert_file, key_file, ca)

    def server_context(self) -> ssl.SSLContext:
        """Context for the listening socket."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """Verifying client context that trusts only the loopback CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def close(self) -> None:
        """Delete the certificate files."""
        shutil.rmtree(self.directory, ignore_errors=True)


def create() -> LoopbackTLS:
    """Mint a fresh CA and server certificate for 127.0.0.1 and localhost."""
    return LoopbackTLS.create()
