"""The device's standard-library ECDSA P-256 verifier against signatures made by ``cryptography``.

``cryptography`` (a dev dependency) signs and serves as the reference: whatever it accepts, the device
accepts; whatever it refuses (bad DER, r/s out of range, wrong key, altered message), the device refuses.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

cryptography = pytest.importorskip("cryptography")
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import (  # noqa: E402
    decode_dss_signature,
    encode_dss_signature,
)

from modelsync_device.signature import (  # noqa: E402
    N,
    P,
    PublicKey,
    SignatureFormatError,
    decode_der_signature,
    load_public_key,
    verify_manifest_signature,
)
from modelsync_protocol import manifest_signing_bytes  # noqa: E402

ECDSA = ec.ECDSA(hashes.SHA256())


def _spki(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _reference_accepts(public: Any, sig: bytes, message: bytes) -> bool:
    try:
        public.verify(sig, message, ECDSA)
    except InvalidSignature:
        return False
    return True


@pytest.fixture(scope="module")
def private() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


def test_verifies_what_cryptography_signs(private: Any) -> None:
    device_key = load_public_key(_pem(private.public_key()))
    assert device_key == load_public_key(_spki(private.public_key()))  # DER and PEM: the same point
    for i in range(12):
        message = os.urandom(i * 37)
        sig = private.sign(message, ECDSA)
        assert device_key.verify(sig, message)
        assert not device_key.verify(sig, message + b"x")


def test_known_answer_rfc6979_p256_sha256() -> None:
    """RFC 6979 A.2.5, message "sample": an answer fixed outside this project (and outside cryptography)."""
    key = PublicKey(0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6,
                    0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299)
    r = 0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716
    s = 0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8
    assert key.verify(encode_dss_signature(r, s), b"sample")
    assert not key.verify(encode_dss_signature(r, s), b"samplE")
    assert not key.verify_rs(r, s ^ 1, b"sample")


def test_wrong_key_is_refused(private: Any) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    sig = private.sign(b"manifest", ECDSA)
    assert not load_public_key(_pem(other.public_key())).verify(sig, b"manifest")
    assert not _reference_accepts(other.public_key(), sig, b"manifest")


def test_r_and_s_ranges_agree_with_cryptography(private: Any) -> None:
    public = private.public_key()
    device_key = load_public_key(_spki(public))
    message = b"range"
    r, s = decode_dss_signature(private.sign(message, ECDSA))
    cases = {
        "valid": (r, s),
        "high s (the other valid s)": (r, N - s),
        "r = 0": (0, s), "s = 0": (r, 0),
        "r = n": (N, s), "s = n": (r, N),
        "r + n": (r + N, s), "s + n": (r, s + N),
        "r = 1, s = 1": (1, 1),
    }
    for name, (rr, ss) in cases.items():
        der = encode_dss_signature(rr, ss)
        want = _reference_accepts(public, der, message)
        assert device_key.verify(der, message) is want, name
    assert device_key.verify(encode_dss_signature(r, N - s), message)  # malleable but valid, as in OpenSSL


def _der_int(v: bytes) -> bytes:
    return bytes([0x02, len(v)]) + v


def test_malformed_der_is_refused(private: Any) -> None:
    public = private.public_key()
    device_key = load_public_key(_spki(public))
    message = b"der"
    good = private.sign(message, ECDSA)
    r, s = decode_dss_signature(good)
    rb = r.to_bytes((r.bit_length() + 8) // 8, "big").lstrip(b"\0") or b"\0"
    rb = (b"\0" + rb) if rb[0] & 0x80 else rb
    sb = s.to_bytes((s.bit_length() + 8) // 8, "big").lstrip(b"\0") or b"\0"
    sb = (b"\0" + sb) if sb[0] & 0x80 else sb
    body = _der_int(rb) + _der_int(sb)
    assert bytes([0x30, len(body)]) + body == good  # the parts rebuild the signature exactly
    malformed = {
        "trailing byte": good + b"\0",
        "wrong outer tag": bytes([0x31]) + good[1:],
        "length too long": bytes([0x30, len(body) + 1]) + body,
        "length too short": bytes([0x30, len(body) - 1]) + body,
        "non-minimal length": bytes([0x30, 0x81, len(body)]) + body,
        "non-minimal INTEGER (extra leading zero)": (lambda b: bytes([0x30, len(b)]) + b)(
            _der_int(b"\0" + rb) + _der_int(sb)),
        "negative r": (lambda b: bytes([0x30, len(b)]) + b)(_der_int(b"\x80" + rb[-31:]) + _der_int(sb)),
        "three INTEGERs": (lambda b: bytes([0x30, len(b)]) + b)(body + _der_int(b"\x01")),
        "one INTEGER": (lambda b: bytes([0x30, len(b)]) + b)(_der_int(rb)),
        "OCTET STRING instead of INTEGER": (lambda b: bytes([0x30, len(b)]) + b)(
            bytes([0x04, len(rb)]) + rb + _der_int(sb)),
        "empty INTEGER": (lambda b: bytes([0x30, len(b)]) + b)(bytes([0x02, 0]) + _der_int(sb)),
        "truncated": good[:-3],
        "empty": b"",
    }
    for name, sig in malformed.items():
        assert not _reference_accepts(public, sig, message), name  # the reference refuses them too
        with pytest.raises(SignatureFormatError):
            device_key.verify(sig, message)
    assert decode_der_signature(good) == (r, s)


def test_keys_off_the_curve_or_not_p256_are_refused(private: Any) -> None:
    numbers = private.public_key().public_numbers()
    with pytest.raises(SignatureFormatError, match="not a point on the P-256 curve"):
        PublicKey(numbers.x, (numbers.y + 1) % P)
    with pytest.raises(SignatureFormatError):
        PublicKey(numbers.x + P, numbers.y)  # coordinates must be reduced
    spki = bytearray(_spki(private.public_key()))
    spki[-1] ^= 1  # y changed: off the curve
    with pytest.raises(ValueError):
        serialization.load_der_public_key(bytes(spki))  # the reference refuses it as well
    with pytest.raises(ValueError, match="not a point on the P-256 curve"):
        load_public_key(bytes(spki))
    for other in (ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP256K1()),
                  rsa.generate_private_key(public_exponent=65537, key_size=2048)):
        with pytest.raises(ValueError, match="P-256"):
            load_public_key(_pem(other.public_key()))
    with pytest.raises(ValueError, match="P-256"):
        load_public_key(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(ValueError, match="cannot read the public key"):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ValueError, match="cannot read the public key"):
        load_public_key(_spki(private.public_key()) + b"\0")


def test_compressed_point_and_key_objects(private: Any) -> None:
    public = private.public_key()
    numbers = public.public_numbers()
    compressed = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    assert PublicKey.from_point(compressed) == PublicKey(numbers.x, numbers.y)
    assert load_public_key(public) == PublicKey(numbers.x, numbers.y)  # a cryptography key, duck-typed
    with pytest.raises(SignatureFormatError):
        PublicKey.from_point(b"\x00")  # the point at infinity is no key


def test_manifest_signature_messages(private: Any, tmp_path: Any) -> None:
    key_file = tmp_path / "registry.pem"
    key_file.write_bytes(_pem(private.public_key()))
    key = load_public_key(str(key_file))
    manifest = {"name": "iris", "version": 2, "revision": 3, "sha256": "a" * 64, "size": 10,
                "format_version": "1.0", "url": "https://b/k?sig=1", "note": "ü\u2028"}
    der = private.sign(manifest_signing_bytes(manifest), ECDSA)
    signed = {**manifest, "signature": base64.b64encode(der).decode()}
    assert verify_manifest_signature(signed, key) is None
    assert verify_manifest_signature({**signed, "url": "https://elsewhere"}, key) is None  # not signed
    assert "does not verify" in (verify_manifest_signature({**signed, "revision": 4}, key) or "")
    r, s = decode_dss_signature(der)
    raw = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
    assert verify_manifest_signature({**manifest, "signature": raw}, key) is None
    assert "unsigned" in (verify_manifest_signature(manifest, key) or "")
    assert "base64" in (verify_manifest_signature({**manifest, "signature": "no!"}, key) or "")
    bad_der = base64.b64encode(der + b"\0").decode()
    assert "malformed" in (verify_manifest_signature({**manifest, "signature": bad_der}, key) or "")
    assert "canonical" in (verify_manifest_signature({**signed, "size": 2**60}, key) or "")


def test_signing_bytes_are_rfc8785() -> None:
    """JCS: keys by UTF-16 code units, ECMAScript numbers, minimal escapes; unsigned fields left out."""
    m = {"version": 2, "\U0001f600": 1, "\ufb01": 2, "size": 1.0, "ratio": 1e21, "url": "u",
         "url_expires_at": "t", "signature": "s", "note": "é\n"}
    assert manifest_signing_bytes(m) == ('{"note":"é\\n","ratio":1e+21,"size":1,"version":2,'
                                         '"\U0001f600":1,"\ufb01":2}').encode()


def test_verifies_the_registry_signer_kms(private: Any) -> None:
    """The registry's own signer (modelsync.service.signing over KMS, as the local stack runs it): what it
    signs verifies on the device; tampering, a malformed DER, out-of-range s and another key do not."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from modelsync.service.signing import ManifestSigner

    with moto.mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        signer = ManifestSigner(kms, key_id)
        device_key = load_public_key(signer.public_key()["public_key_pem"])
        for version in range(1, 6):
            manifest = {"name": "iris", "version": version, "alias": "production", "revision": version + 3,
                        "sha256": f"{version:064x}", "size": 1234, "format_version": "1.2",
                        "url": "https://bucket.s3/k?X-Amz-Signature=abc",
                        "url_expires_at": "2030-01-01T00:00Z"}
            signed = signer.sign(manifest)
            assert verify_manifest_signature(signed, device_key) is None
            tampered = {**signed, "version": 99}
            assert "does not verify" in (verify_manifest_signature(tampered, device_key) or "")
            assert "does not verify" in (verify_manifest_signature(
                {**signed, "key_id": "arn:aws:kms:us-east-1:1:key/other"}, device_key) or "")
            other = load_public_key(_pem(private.public_key()))
            assert "does not verify" in (verify_manifest_signature(signed, other) or "")
            der = base64.b64decode(signed["signature"])
            r, s = decode_dss_signature(der)
            assert not device_key.verify(encode_dss_signature(r, s + N), manifest_signing_bytes(signed))
            truncated = base64.b64encode(der[:-1]).decode()
            assert "malformed" in (verify_manifest_signature({**signed, "signature": truncated}, device_key)
                                   or "")
