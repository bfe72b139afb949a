#!/usr/bin/python3
"""auth::verifier against PyJWT: both verify the same tokens and must agree.

Usage: jwt_pyjwt.py PATH/TO/jwt_verify_tool
PyJWT (Debian's python3-jwt, with python3-cryptography) makes the keys, the JWKS (its own
to_jwk) and the tokens for every algorithm: valid ones and ones that are expired, not yet
valid, issued in the future, for another issuer or audience, without sub, with a payload
or signature changed. Each token goes through jwt.decode() and through our verifier
(jwt_verify_tool, keys given as secret file, PEM file or JWKS); PyJWT's exception is mapped
to our reason and the two verdicts must match. Where ringcast is stricter on purpose
(duplicate member names, non-canonical base64url, alg none, algorithm confusion; crit
before Debian's CVE-2026-32597 fix) the case says so and checks both answers. TAP output through tests/integration/support.py (run_cases).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import support  # noqa: E402
from support import expect  # noqa: E402

try:
    import jwt
    from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError as e:
    support.missing(f"python3 module for PyJWT ({e}): apt-get install python3-jwt python3-cryptography")

ISSUER = "https://auth.example"
AUDIENCE = "ringcast"
LEEWAY = 30
ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


def tool_path():
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        support.missing("usage: jwt_pyjwt.py PATH/TO/jwt_verify_tool")
    return sys.argv[1]


class fixture:
    """Keys made by python3-cryptography, written as a secret file, PEM files and a JWKS."""

    def __init__(self, directory):
        self.dir = directory
        self.secret = os.urandom(24).hex().encode()  # 48 bytes
        self.private = {
            "rsa": rsa.generate_private_key(65537, 2048),
            "p256": ec.generate_private_key(ec.SECP256R1()),
            "p384": ec.generate_private_key(ec.SECP384R1()),
            "ed25519": ed25519.Ed25519PrivateKey.generate(),
        }
        self.public = {name: key.public_key() for name, key in self.private.items()}
        self.pem = {}
        for name, key in self.public.items():
            text = key.public_bytes(serialization.Encoding.PEM,
                                    serialization.PublicFormat.SubjectPublicKeyInfo)
            self.pem[name] = self.write(f"{name}.pem", text)
        self.secret_file = self.write("secret", self.secret + b"\n")
        jwks = [json.loads(RSAAlgorithm.to_jwk(self.public["rsa"])) | {"kid": "k-rsa"},
                json.loads(ECAlgorithm.to_jwk(self.public["p256"])) | {"kid": "k-p256"},
                json.loads(ECAlgorithm.to_jwk(self.public["p384"])) | {"kid": "k-p384"},
                json.loads(OKPAlgorithm.to_jwk(self.public["ed25519"])) | {"kid": "k-ed"},
                json.loads(HMACAlgorithm.to_jwk(self.secret)) | {"kid": "k-hmac"}]
        self.jwks_file = self.write("jwks.json", json.dumps({"keys": jwks}).encode())

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    @staticmethod
    def key_name(alg):
        if alg.startswith("HS"):
            return "secret"
        if alg.startswith(("RS", "PS")):
            return "rsa"
        return {"ES256": "p256", "ES384": "p384", "EdDSA": "ed25519"}[alg]

    def signing_key(self, alg):
        name = self.key_name(alg)
        return self.secret if name == "secret" else self.private[name]

    def verifying_key(self, alg):
        name = self.key_name(alg)
        return self.secret if name == "secret" else self.public[name]

    def tool_keys(self, alg, source):
        if source == "jwks":
            return ["--jwks-file", self.jwks_file]
        name = self.key_name(alg)
        return ["--secret-file", self.secret_file] if name == "secret" else \
            ["--public-key", self.pem[name]]


def ours(tool, key_args, tokens, configured=True):
    args = [tool, *key_args, "--leeway", str(LEEWAY)]
    if configured:
        args += ["--issuer", ISSUER, "--audience", AUDIENCE]
    done = subprocess.run(args, input="".join(t + "\n" for t in tokens), capture_output=True,
                          text=True, timeout=60)
    expect(done.returncode == 0, f"jwt_verify_tool exit {done.returncode}: {done.stdout} {done.stderr}")
    lines = done.stdout.splitlines()
    expect(len(lines) == len(tokens), f"{len(tokens)} tokens, {len(lines)} verdicts: {lines}")
    return ["ok" if line.startswith("ok ") else line.removeprefix("error ") for line in lines]


def pyjwt(token, key, alg, configured=True):
    """PyJWT's verdict in our vocabulary: "ok" or the reason we give for the same fault."""
    kwargs = {"algorithms": [alg], "leeway": LEEWAY, "options": {"require": ["exp", "sub"]}}
    if configured:
        kwargs |= {"issuer": ISSUER, "audience": AUDIENCE}
    try:
        jwt.decode(token, key, **kwargs)
        return "ok"
    except jwt.ExpiredSignatureError:
        return "token expired"
    except jwt.ImmatureSignatureError:
        return "not yet valid (nbf or iat)"
    except jwt.InvalidAudienceError:
        return "wrong audience"
    except jwt.InvalidIssuerError:
        return "wrong issuer"
    except jwt.MissingRequiredClaimError as e:
        return {"sub": "missing sub", "exp": "missing exp", "aud": "wrong audience",
                "iss": "wrong issuer"}[e.claim]
    except jwt.InvalidSignatureError:
        return "bad signature"
    except jwt.InvalidAlgorithmError:
        return "algorithm not allowed"
    except jwt.DecodeError:
        return "malformed token"
    except jwt.InvalidTokenError as e:
        # Debian's 2.6.0-1+deb12u1 (CVE-2026-32597) refuses a crit header it does not
        # understand with the base class; anything else is a verdict we have no name for.
        if "critical extension" in str(e):
            return "unsupported crit header"
        raise


def pyjwt_crit_verdict():
    """PyJWT 2.6.0 accepted any crit header; Debian's 2.6.0-1+deb12u1 (the fix for
    CVE-2026-32597, which adds PyJWS._validate_crit) refuses one naming an extension it
    does not know, as ringcast always has."""
    return "unsupported crit header" if hasattr(jwt.api_jws.PyJWS, "_validate_crit") else "ok"


def same(our, theirs):
    if theirs == "not yet valid (nbf or iat)":  # PyJWT has one exception for both
        return our in ("token not yet valid", "token issued in the future")
    return our == theirs


def claims(now, **changes):
    base = {"sub": "alice", "exp": now + 1000, "iat": now - 10, "nbf": now - 10, "iss": ISSUER,
            "aud": AUDIENCE, "channels": ["team:red", "test-progress-*"], "roles": ["admin"]}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def flip(segment, index):
    """One base64url character replaced by another valid one (changes the bytes)."""
    c = segment[index]
    return segment[:index] + ("A" if c != "A" else "B") + segment[index + 1:]


def variants(fx, alg, now, headers=None):
    """(name, token) pairs for one algorithm: valid and one fault each."""
    key = fx.signing_key(alg)

    def make(**changes):
        return jwt.encode(claims(now, **changes), key, algorithm=alg, headers=headers)

    good = make()
    h, p, s = good.split(".")
    other_payload = make(sub="mallory").split(".")[1]
    b64 = lambda b: jwt.utils.base64url_encode(b).decode()  # noqa: E731
    raw_signature = jwt.utils.base64url_decode(s)
    header = json.loads(jwt.utils.base64url_decode(h)) | {"x": 1}
    other_header = b64(json.dumps(header).encode())
    return [
        ("valid", good),
        ("aud as an array", make(aud=["other", AUDIENCE])),
        ("float exp", make(exp=now + 1000.5)),
        ("expired", make(exp=now - 100)),
        ("expired within leeway", make(exp=now - 10)),
        ("nbf in the future", make(nbf=now + 1000)),
        ("iat in the future", make(iat=now + 1000)),
        ("wrong issuer", make(iss="https://evil.example")),
        ("wrong audience", make(aud="other")),
        ("aud array without us", make(aud=["a", "b"])),
        ("no sub", make(sub=None)),
        ("no exp", make(exp=None)),
        ("payload swapped", f"{h}.{other_payload}.{s}"),
        ("signature changed", f"{h}.{p}.{flip(s, len(s) // 2)}"),
        ("signature one byte short", f"{h}.{p}.{b64(raw_signature[:-1])}"),
        ("signature one byte longer", f"{h}.{p}.{b64(raw_signature + b'0')}"),
        ("header member added", f"{other_header}.{p}.{s}"),
    ]


def algorithm_case(tool, fx, alg, source):
    def check():
        now = int(time.time())
        headers = {"kid": {"secret": "k-hmac", "rsa": "k-rsa", "p256": "k-p256", "p384": "k-p384",
                           "ed25519": "k-ed"}[fx.key_name(alg)]} if source == "jwks" else None
        cases = variants(fx, alg, now, headers)
        got = ours(tool, fx.tool_keys(alg, source), [t for _, t in cases])
        wrong = []
        for (name, token), our in zip(cases, got):
            theirs = pyjwt(token, fx.verifying_key(alg), alg)
            if not same(our, theirs):
                wrong.append(f"{name}: ringcast '{our}', PyJWT '{theirs}'")
        expect(got[0] == "ok", f"a valid {alg} token was refused: {got[0]}")
        expect(not wrong, "; ".join(wrong))
    return check


def stricter_cases(tool, fx):
    """Where ringcast refuses on purpose what PyJWT 2.6 lets through (or cannot make)."""

    def check():
        now = int(time.time())
        b64 = lambda b: jwt.utils.base64url_encode(b).decode()  # noqa: E731
        import hmac
        import hashlib

        def hs256(header_json, payload_json):
            signing = f"{b64(header_json)}.{b64(payload_json)}"
            sig = hmac.new(fx.secret, signing.encode(), hashlib.sha256).digest()
            return f"{signing}.{b64(sig)}"

        payload = json.dumps(claims(now)).encode()
        unsecured = b64(b'{"alg":"none"}') + "." + b64(payload) + "."
        canonical = hs256(b'{"alg":"HS256"}', payload)
        # HS256: 32 bytes = 43 characters, the last one carrying 2 unused bits.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        noncanonical_last = alphabet[alphabet.index(canonical[-1]) | 1]
        dup_payload = payload[:-1] + b',"sub":"mallory"}'
        rows = [
            # (name, token, ringcast verdict, PyJWT verdict)
            ("duplicate sub in the payload", hs256(b'{"alg":"HS256"}', dup_payload),
             "malformed token", "ok"),
            ("duplicate alg in the header", hs256(b'{"alg":"HS256","alg":"HS256"}', payload),
             "malformed token", "ok"),
            ("crit header", hs256(b'{"alg":"HS256","crit":["exp"],"exp":1}', payload),
             "unsupported crit header", pyjwt_crit_verdict()),
            ("alg none", unsecured, "algorithm not allowed", "algorithm not allowed"),
            # The same fault in other words: a header without alg.
            ("header without alg", hs256(b'{"typ":"JWT"}', payload), "malformed token",
             "algorithm not allowed"),
            # Non-canonical base64url: the signature's unused low bits set (PyJWT's decoder
            # ignores them, so it verifies; two spellings of one token are refused here).
            ("signature with unused bits set", canonical[:-1] + noncanonical_last,
             "malformed token", "ok"),
        ]
        tokens = [r[1] for r in rows]
        got = ours(tool, ["--secret-file", fx.secret_file], tokens)
        wrong = []
        for (name, token, expected_ours, expected_theirs), our in zip(rows, got):
            theirs = pyjwt(token, fx.secret, "HS256")
            if our != expected_ours or theirs != expected_theirs:
                wrong.append(f"{name}: ringcast '{our}' (want '{expected_ours}'), "
                             f"PyJWT '{theirs}' (want '{expected_theirs}')")
        expect(not wrong, "; ".join(wrong))
    return check


def confusion_case(tool, fx):
    """HS256 'signed' with the RSA public key's PEM text, verified with that PEM."""

    def check():
        now = int(time.time())
        with open(fx.pem["rsa"], "rb") as f:
            pem = f.read()
        signing = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}').decode() + "." + \
            jwt.utils.base64url_encode(json.dumps(claims(now)).encode()).decode()
        import hmac
        import hashlib
        sig = jwt.utils.base64url_encode(hmac.new(pem, signing.encode(), hashlib.sha256).digest())
        token = f"{signing}.{sig.decode()}"
        got = ours(tool, ["--public-key", fx.pem["rsa"]], [token])
        expect(got == ["algorithm not allowed"], f"ringcast: {got}")
        # PyJWT refuses to use PEM text as an HMAC secret too.
        try:
            jwt.decode(token, pem, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
            support.fail("PyJWT accepted the confused token")
        except jwt.exceptions.InvalidKeyError:
            pass
    return check


def unconfigured_case(tool, fx):
    """No --issuer / --audience: iss is free, a token with aud is refused by both."""

    def check():
        now = int(time.time())
        key = fx.signing_key("ES256")
        tokens = [jwt.encode(claims(now, aud=None, iss="anyone"), key, algorithm="ES256"),
                  jwt.encode(claims(now), key, algorithm="ES256")]
        got = ours(tool, fx.tool_keys("ES256", "pem"), tokens, configured=False)
        theirs = [pyjwt(t, fx.verifying_key("ES256"), "ES256", configured=False) for t in tokens]
        expect(got == theirs == ["ok", "wrong audience"], f"ringcast {got}, PyJWT {theirs}")
    return check


def main():
    tool = tool_path()
    with tempfile.TemporaryDirectory(prefix="ringcast-jwt-") as directory:
        fx = fixture(directory)
        cases = [(f"{alg} from PyJWT, key from {source}: same verdicts (valid and 16 faults)",
                  algorithm_case(tool, fx, alg, source))
                 for source in ("pem", "jwks") for alg in ALGS]
        cases += [("HS256 signed with the PEM text of the RSA key: refused by both",
                   confusion_case(tool, fx)),
                  ("without issuer/audience configured: iss free, aud refused by both",
                   unconfigured_case(tool, fx)),
                  ("stricter than PyJWT on purpose: duplicate names, unused base64 bits; crit "
                   "refused; alg none refused; no alg",
                   stricter_cases(tool, fx))]
        return support.run_cases(cases, "auth::verifier against PyJWT "
                                 f"{jwt.__version__}")


if __name__ == "__main__":
    sys.exit(main())
