"""Verify ECDSA P-256 / SHA-256 manifest signatures with the standard library alone.

The registry signs with KMS (``ECC_NIST_P256``, ``ECDSA_SHA_256``): a DER ``SEQUENCE {r, s}`` over the
SHA-256 of :func:`modelsync_protocol.manifest_signing_bytes`. A device only ever *verifies*, with a public
key it was given (PEM/DER SubjectPublicKeyInfo), so this small verifier (SEC 1 v2 section 4.1.4, FIPS
186-5) replaces a dependency on ``cryptography``. Verification handles public data only, so constant-time
arithmetic is not needed. Anything malformed - DER that is not minimal, r or s outside [1, n-1], a point
off the curve - is refused, never "repaired".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelsync_protocol import manifest_signing_bytes
from scorer import InvalidModel

# NIST P-256 (secp256r1): y^2 = x^3 - 3x + b over GF(p), base point G of prime order n, cofactor 1
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

# DER of the AlgorithmIdentifier in a P-256 SubjectPublicKeyInfo: id-ecPublicKey + prime256v1
_EC_PUBLIC_KEY_OID = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
_P256_OID = bytes.fromhex("2a8648ce3d030107")  # 1.2.840.10045.3.1.7


class SignatureFormatError(ValueError):
    """A key or signature that is not well-formed DER / not a P-256 key."""


# -- DER (only what a P-256 SubjectPublicKeyInfo and an ECDSA signature use) ------------------------

def _der_element(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, content, next position) of the element at ``pos``; definite, minimal lengths only."""
    if pos + 2 > len(data):
        raise SignatureFormatError("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise SignatureFormatError("bad DER length")
        length = int.from_bytes(data[pos: pos + n], "big")
        if length < 0x80 or data[pos] == 0:
            raise SignatureFormatError("DER length not minimally encoded")
        pos += n
    end = pos + length
    if end > len(data):
        raise SignatureFormatError("truncated DER")
    return tag, data[pos:end], end


def _der_sequence(data: bytes, what: str) -> list[tuple[int, bytes]]:
    """The elements of the single SEQUENCE ``data`` is (no trailing bytes)."""
    tag, body, end = _der_element(data, 0)
    if tag != 0x30 or end != len(data):
        raise SignatureFormatError(f"{what} is not a single DER SEQUENCE")
    return _der_items(body)


def _der_items(body: bytes) -> list[tuple[int, bytes]]:
    """The consecutive elements filling ``body`` (the content of a SEQUENCE)."""
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(body):
        t, content, pos = _der_element(body, pos)
        items.append((t, content))
    return items


def _der_positive_integer(tag: int, content: bytes) -> int:
    if tag != 0x02 or not content:
        raise SignatureFormatError("expected a DER INTEGER")
    if content[0] & 0x80:
        raise SignatureFormatError("negative INTEGER in signature")
    if len(content) > 1 and content[0] == 0 and not content[1] & 0x80:
        raise SignatureFormatError("INTEGER not minimally encoded")
    return int.from_bytes(content, "big")


def decode_der_signature(sig: bytes) -> tuple[int, int]:
    """``(r, s)`` from a DER ``SEQUENCE { INTEGER r, INTEGER s }`` (what KMS returns)."""
    items = _der_sequence(sig, "signature")
    if len(items) != 2:
        raise SignatureFormatError("signature must hold exactly two INTEGERs")
    return _der_positive_integer(*items[0]), _der_positive_integer(*items[1])


# -- the curve (Jacobian coordinates; None is the point at infinity) --------------------------------

_Jacobian = tuple[int, int, int] | None


def _double(pt: _Jacobian) -> _Jacobian:
    if pt is None or pt[1] == 0:
        return None
    x, y, z = pt
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    m = 3 * (x - zz) * (x + zz) % P  # a = -3
    x3 = (m * m - 2 * s) % P
    return x3, (m * (s - x3) - 8 * yy * yy) % P, 2 * y * z % P


def _add(p1: _Jacobian, p2: _Jacobian) -> _Jacobian:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    h, r = (u2 - u1) % P, (s2 - s1) % P
    if h == 0:
        return _double(p1) if r == 0 else None
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    return x3, (r * (v - x3) - s1 * hhh) % P, h * z1 * z2 % P


def _shamir(u1: int, g: _Jacobian, u2: int, q: _Jacobian) -> _Jacobian:
    """``u1*G + u2*Q`` in one double-and-add pass."""
    both = _add(g, q)
    acc: _Jacobian = None
    for bit in range(max(u1.bit_length(), u2.bit_length()) - 1, -1, -1):
        acc = _double(acc)
        pick = ((u1 >> bit) & 1, (u2 >> bit) & 1)
        if pick == (1, 1):
            acc = _add(acc, both)
        elif pick == (1, 0):
            acc = _add(acc, g)
        elif pick == (0, 1):
            acc = _add(acc, q)
    return acc


def on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


@dataclass(frozen=True)
class PublicKey:
    """An ECDSA P-256 public key (affine point, checked to be on the curve)."""

    x: int
    y: int

    def __post_init__(self) -> None:
        if not on_curve(self.x, self.y):
            raise SignatureFormatError("the public key is not a point on the P-256 curve")

    @classmethod
    def from_point(cls, point: bytes) -> PublicKey:
        """SEC 1 encoded point: ``04 || X || Y`` (uncompressed) or ``02/03 || X`` (compressed)."""
        if len(point) == 65 and point[0] == 4:
            return cls(int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big"))
        if len(point) == 33 and point[0] in (2, 3):
            x = int.from_bytes(point[1:], "big")
            if x >= P:
                raise SignatureFormatError("the public key is not a point on the P-256 curve")
            y = pow((x * x * x + A * x + B) % P, (P + 1) // 4, P)  # p = 3 mod 4: the square root, if any
            if y & 1 != point[0] & 1:
                y = P - y
            return cls(x, y)
        raise SignatureFormatError("unsupported EC point encoding (expected a P-256 SEC 1 point)")

    @classmethod
    def from_der(cls, der: bytes) -> PublicKey:
        """A DER SubjectPublicKeyInfo (what ``kms get-public-key`` and ``openssl ec -pubout`` give)."""
        items = _der_sequence(der, "public key")
        if len(items) != 2 or items[0][0] != 0x30 or items[1][0] != 0x03:
            raise SignatureFormatError("not a SubjectPublicKeyInfo")
        algorithm = _der_items(items[0][1])
        if algorithm != [(0x06, _EC_PUBLIC_KEY_OID), (0x06, _P256_OID)]:
            raise SignatureFormatError("the public key must be an ECDSA P-256 (secp256r1) key")
        bits = items[1][1]
        if not bits or bits[0] != 0:
            raise SignatureFormatError("bad BIT STRING in the public key")
        return cls.from_point(bits[1:])

    @classmethod
    def from_pem(cls, pem: bytes | str) -> PublicKey:
        text = pem.decode("ascii") if isinstance(pem, bytes) else pem
        begin, end = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
        start = text.find(begin)
        stop = text.find(end, start + len(begin))
        if start < 0 or stop < 0:
            raise SignatureFormatError("expected a PEM '-----BEGIN PUBLIC KEY-----' block")
        body = "".join(text[start + len(begin): stop].split())
        try:
            der = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise SignatureFormatError("the PEM block is not valid base64") from None
        return cls.from_der(der)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether the DER ``signature`` is this key's ECDSA signature of SHA-256(``message``).

        Raises :class:`SignatureFormatError` for a signature that is not well-formed DER.
        """
        r, s = decode_der_signature(signature)
        return self.verify_rs(r, s, message)

    def verify_rs(self, r: int, s: int, message: bytes) -> bool:
        if not (1 <= r < N and 1 <= s < N):
            return False
        e = int.from_bytes(hashlib.sha256(message).digest(), "big")  # 256 bits = bits of n: no truncation
        w = pow(s, -1, N)
        point = _shamir(e * w % N, (GX, GY, 1), r * w % N, (self.x, self.y, 1))
        if point is None:
            return False
        x, _, z = point
        return x * pow(z * z, -1, P) % P % N == r


def load_public_key(key: Any) -> PublicKey:
    """An ECDSA P-256 public key from PEM/DER bytes, PEM text, a file path, or an already loaded key.

    A ``cryptography`` EC public key object is accepted too (through its public numbers; nothing is
    imported). Raises ValueError when the key is unreadable or not P-256.
    """
    if isinstance(key, PublicKey):
        return key
    if hasattr(key, "public_numbers"):  # duck-typed cryptography key
        numbers = key.public_numbers()
        if getattr(getattr(numbers, "curve", None), "name", None) != "secp256r1":
            raise ValueError("the manifest public key must be an ECDSA P-256 (secp256r1) key")
        return PublicKey(numbers.x, numbers.y)
    if isinstance(key, os.PathLike) or (isinstance(key, str) and "-----BEGIN" not in key):
        with open(os.fspath(key), "rb") as f:
            key = f.read()
    data = key.encode() if isinstance(key, str) else bytes(key)
    try:
        return PublicKey.from_pem(data) if b"-----BEGIN" in data else PublicKey.from_der(data)
    except (SignatureFormatError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the public key: {exc}") from None


def verify_manifest_signature(manifest: Mapping[str, Any], public_key: PublicKey) -> str | None:
    """None when ``signature`` verifies with ``public_key``; otherwise why not.

    Accepts DER (what KMS returns) or the 64-byte raw ``r || s`` form.
    """
    sig_b64 = manifest.get("signature")
    if sig_b64 is None or sig_b64 == "":
        return "manifest is unsigned, but this device only accepts signed manifests"
    if not isinstance(sig_b64, str):
        return "manifest signature must be a base64 string"
    try:
        sig = base64.b64decode(sig_b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return "manifest signature is not valid base64"
    try:
        message = manifest_signing_bytes(manifest)
    except InvalidModel as exc:
        return f"manifest cannot be put in canonical form: {exc}"
    try:
        if len(sig) == 64:
            r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            ok = public_key.verify_rs(r, s, message)
        else:
            ok = public_key.verify(sig, message)
    except SignatureFormatError as exc:
        return f"manifest signature is malformed: {exc}"
    return None if ok else "manifest signature does not verify with this device's public key"
