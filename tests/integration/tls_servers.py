"""Real TLS servers and clients between the two namespaces of a ``tests.kernel.NetnsPair``.

* ``make_certs``: a test CA and a server certificate for one host name (``cryptography``),
  with the subject / issuer strings Suricata would log for them.
* ``sparse_file``: a big file that takes no disk space (a hole).
* ``NginxServer``: nginx in a namespace on one address/port with that certificate, serving a
  directory (``/delay/<name>`` answers ``<name>`` after ``delay`` seconds, with the echo module
  when it is there). ``OpensslServer``: ``openssl s_server -WWW`` for the same job when nginx
  is missing (one TLS version, one connection at a time).
* ``curl_download``: ``curl`` in a namespace fetching one URL through the CA (the host name is
  resolved to the server's address with ``--resolve``: no DNS), reporting the bytes received,
  the time taken and the TLS version that was negotiated.

Readiness is read from ``/proc/net/tcp*`` inside the namespace, so starting a server sends no
packet (an engine that already captures sees only the test's own connections). Every process
is started with ``NetnsPair.popen`` and is therefore also killed at the pair's teardown.
Traffic only ever goes to the namespaces' own addresses.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests import kernel

ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
GIB = 1 << 30


# --------------------------------------------------------------------------------------------
# certificates and content
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    """PEM files of a CA and of a server certificate it signed, and the strings Suricata
    logs for the server certificate (``tls.subject`` / ``tls.issuerdn``)."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    hostname: str
    subject: str
    issuer: str
    serial: str  # "38:67:7B:...": the DER integer's bytes (a leading 00 kept), upper case
    fingerprint: str  # SHA-1 of the DER certificate, "b1:ab:...", lower case
    not_before: str  # "2026-12-06T11:47:19" (UTC, seconds)
    not_after: str

    def eve_tls(self, version: str) -> dict[str, str]:
        """The certificate and handshake fields of Suricata's extended EVE ``tls`` object
        for a handshake with this server (``version`` "1.2"/"1.3"). TLS 1.3 encrypts the
        certificate: only the SNI and the version are visible then."""
        fields = {"sni": self.hostname, "version": f"TLS {version}"}
        if version != "1.3":
            fields.update(subject=self.subject, issuerdn=self.issuer, serial=self.serial,
                          fingerprint=self.fingerprint, notbefore=self.not_before,
                          notafter=self.not_after)
        return fields


def make_certs(directory: Path, hostname: str) -> Certs:
    """A fresh CA (``CN=Ruleengine Test CA``) and a server certificate for ``hostname``
    (subjectAltName DNS) signed by it. EC P-256 keys: fast to make."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ruleengine Tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Ruleengine Test CA"),
    ])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ruleengine Tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, hostname),
    ])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(later)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_pem = directory / "ca.pem"
    cert_pem = directory / "server.pem"
    key_pem = directory / "server.key"
    ca_pem.write_bytes(ca.public_bytes(pem))
    cert_pem.write_bytes(cert.public_bytes(pem))
    key_pem.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    key_pem.chmod(0o600)
    serial = cert.serial_number
    serial_der = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # DER: sign bit 0
    stamp = "%Y-%m-%dT%H:%M:%S"
    # Suricata's form: RDNs in certificate order, "ABBREV=value" joined by ", "
    return Certs(ca_pem, cert_pem, key_pem, hostname,
                 subject=f"C=XX, O=Ruleengine Tests, CN={hostname}",
                 issuer="C=XX, O=Ruleengine Tests, CN=Ruleengine Test CA",
                 serial=":".join(f"{b:02X}" for b in serial_der),
                 fingerprint=":".join(f"{b:02x}" for b in cert.fingerprint(hashes.SHA1())),
                 not_before=cert.not_valid_before_utc.strftime(stamp),
                 not_after=cert.not_valid_after_utc.strftime(stamp))


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that is one hole (no disk blocks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


# --------------------------------------------------------------------------------------------
# readiness without traffic
# --------------------------------------------------------------------------------------------


def listening(net: kernel.NetnsPair, ns: str, port: int) -> bool:
    """Something in ``ns`` listens on TCP ``port`` (read from /proc: no packet is sent)."""
    out = net.run(ns, "cat", "/proc/net/tcp", "/proc/net/tcp6", check=False).stdout
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and ":" in fields[1] and fields[3] == "0A":
            with contextlib.suppress(ValueError):
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def _wait_listening(net: kernel.NetnsPair, ns: str, port: int,
                    proc: subprocess.Popen[bytes], what: str, log: Path,
                    timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}: {_tail(log)}")
        if listening(net, ns, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on {port} after {timeout}s: {_tail(log)}")


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------


class NginxServer:
    """nginx (one process, ``master_process off``) in ``ns`` listening with TLS on
    ``(host, port)`` for ``certs.hostname``, serving ``docroot``.

    ``protocols``: nginx's ``ssl_protocols``. ``/delay/<file>`` answers ``<file>`` only after
    ``delay`` seconds (the response waits, the handshake does not): a capture that decides on
    the handshake has then decided before the data flows, as a real client's think time
    would allow. Needs the echo module (``echo_sleep``); without it ``/delay/`` is the same as
    ``/`` and ``has_delay`` is False.
    """

    def __init__(self, net: kernel.NetnsPair, ns: str, host: str, port: int, certs: Certs,
                 docroot: Path, workdir: Path, *, protocols: str = "TLSv1.2 TLSv1.3",
                 delay: float = 1.0) -> None:
        if shutil.which("nginx") is None:
            kernel.skip("command 'nginx' not found (install nginx-light: see the Makefile)")
        self.port = port
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.has_delay = ECHO_MODULE.exists()
        delay_location = (f"location ~ ^/delay(/.*)$ {{ set $file $1; "
                          f"echo_sleep {delay:.3f}; echo_exec $file; }}"
                          if self.has_delay else
                          "location /delay/ { rewrite ^/delay(/.*)$ $1 break; }")
        temp = "\n".join(f"    {kind}_temp_path {workdir}/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.log = workdir / "error.log"
        conf = f"""
{f"load_module {ECHO_MODULE};" if self.has_delay else ""}
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {self.log} notice;
events {{ worker_connections 64; }}
http {{
    access_log {workdir}/access.log;
{temp}
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 5;
    server {{
        listen {_hostport(host, port)} ssl;
        server_name {certs.hostname};
        ssl_certificate {certs.cert_pem};
        ssl_certificate_key {certs.key_pem};
        ssl_protocols {protocols};
        ssl_session_tickets on;
        root {docroot};
        location / {{ }}
        {delay_location}
    }}
}}
"""
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(conf)
        self.proc = net.popen(ns, "nginx", "-p", str(workdir), "-c", str(self.conf),
                              "-e", str(self.log), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))  # noqa: SIM115
        _wait_listening(net, ns, port, self.proc, "nginx", self.log)

    def access_log(self) -> str:
        return _tail(self.workdir / "access.log")

    def close(self) -> None:
        _stop(self.proc, signal.SIGQUIT)  # graceful: finish the responses, then exit


class OpensslServer:
    """``openssl s_server -WWW`` in ``ns`` on ``(host, port)``: ``GET /<file>`` answers the
    file from ``docroot`` (no delay option). ``version``: ``"1.2"`` or ``"1.3"``."""

    has_delay = False

    def __init__(self, net: kernel.NetnsPair, ns: str, host: str, port: int, certs: Certs,
                 docroot: Path, workdir: Path, *, version: str = "1.3") -> None:
        kernel.require_command("openssl")
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "s_server.log"
        flag = {"1.2": "-tls1_2", "1.3": "-tls1_3"}[version]
        self.proc = net.popen(ns, "openssl", "s_server", "-accept", _hostport(host, port),
                              "-cert", str(certs.cert_pem), "-key", str(certs.key_pem),
                              "-WWW", flag, "-quiet",
                              cwd=str(docroot), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))  # noqa: SIM115
        _wait_listening(net, ns, port, self.proc, "openssl s_server", self.log)

    def close(self) -> None:
        _stop(self.proc)


# --------------------------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------------------------


@dataclass
class Download:
    """What ``curl`` reported for one fetch."""

    returncode: int
    http_code: int
    size: int
    seconds: float  # the whole fetch (connect to last byte)
    handshake_seconds: float  # until the TLS handshake was done (curl's time_appconnect)
    first_byte_seconds: float  # until the first response byte (time_starttransfer)
    tls_version: str  # "TLSv1.2" / "TLSv1.3" as the client saw it (from curl -v), or ""
    stderr: str


def curl_download(net: kernel.NetnsPair, ns: str, certs: Certs, host: str, port: int,
                  path: str, *, tls: str = "1.3", local_port: int | None = None,
                  timeout: float = 120.0) -> Download:
    """``curl`` in ``ns`` fetches ``https://<certs.hostname>:<port><path>`` from ``host``
    (``--resolve``, verified with the test CA), TLS version exactly ``tls``; the body goes to
    /dev/null. ``local_port`` pins the source port (the flow's 5-tuple is then known)."""
    kernel.require_command("curl")
    target = f"[{host}]" if ":" in host else host
    url = f"https://{certs.hostname}:{port}{path}"
    cmd = ["curl", "-sS", "-v", "--http1.1", "--cacert", str(certs.ca_pem),
           "--resolve", f"{certs.hostname}:{port}:{target}",
           f"--tlsv{tls}", "--tls-max", tls, "--no-keepalive", "--max-time", str(int(timeout)),
           "-o", "/dev/null", "-w",
           "%{http_code} %{size_download} %{time_total} %{time_appconnect} "
           "%{time_starttransfer}\n"]
    if local_port is not None:
        cmd += ["--local-port", str(local_port)]
    cmd.append(url)
    env = dict(os.environ, LC_ALL="C")
    env.pop("SSLKEYLOGFILE", None)
    proc = net.popen(ns, *cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     stdin=subprocess.DEVNULL, env=env)
    try:
        out, err = proc.communicate(timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    text = err.decode(errors="replace")
    version = ""
    for line in text.splitlines():  # "* SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384"
        if "SSL connection using" in line:
            version = line.split("using", 1)[1].split("/", 1)[0].strip()
    fields = out.decode(errors="replace").split()
    if len(fields) != 5:
        fields = ["0", "0", "0", "0", "0"]
    return Download(proc.returncode or 0, int(fields[0]), int(fields[1]), float(fields[2]),
                    float(fields[3]), float(fields[4]), version, text[-3000:])
