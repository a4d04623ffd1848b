"""Makes a test PKI in the folder given as the first argument, with Python's
`cryptography` (in the project's venv, as moto needs it): two certificate
authorities, `ca` (the one the tests trust) and `other-ca` (one they do not),
and server certificates with their keys (P-256, PEM, PKCS#8):

- `good`: for `localhost`, signed by `ca`, valid from an hour ago for a day;
- `wrong-host`: for `dynamodb.example.com`, signed by `ca`;
- `unknown-ca`: for `localhost`, signed by `other-ca`;
- `expired`: for `localhost`, signed by `ca`, valid for a day until an hour ago.

Files: `ca.pem`, `other-ca.pem`, and `<name>.pem` with `<name>.key` for each.
"""

import datetime
import ipaddress
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


def name(common):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def authority(common):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(common))
        .issuer_name(name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - HOUR)
        .not_valid_after(NOW + 10 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def server(host, issuer, not_before, not_after):
    issuer_key, issuer_cert = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(host)]
    if host == "localhost":
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(host))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    return key, cert


def write(folder, stem, key, cert):
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        (folder / f"{stem}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def main():
    folder = pathlib.Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    ca = authority("ld-dynamodb test CA")
    other = authority("ld-dynamodb other CA")
    write(folder, "ca", None, ca[1])
    write(folder, "other-ca", None, other[1])
    servers = {
        "good": server("localhost", ca, NOW - HOUR, NOW + DAY),
        "wrong-host": server("dynamodb.example.com", ca, NOW - HOUR, NOW + DAY),
        "unknown-ca": server("localhost", other, NOW - HOUR, NOW + DAY),
        "expired": server("localhost", ca, NOW - DAY - HOUR, NOW - HOUR),
    }
    for stem, (key, cert) in servers.items():
        write(folder, stem, key, cert)


if __name__ == "__main__":
    main()
