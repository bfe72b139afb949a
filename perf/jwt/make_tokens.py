#!/usr/bin/python3
"""perf/jwt/make_tokens.py — N client tokens for `ringcast-bench --token-file`, and the key
ringcastd verifies them with.

  perf/jwt/make_tokens.py --alg HS256 --count 10000 --dir /tmp/tok
      writes /tmp/tok/hs256.secret (for ringcastd --jwt-secret-file) and /tmp/tok/hs256.tokens
  perf/jwt/make_tokens.py --alg ES256 --count 10000 --dir /tmp/tok
      writes /tmp/tok/es256-private.pem (kept only to sign more), /tmp/tok/es256-public.pem
      (for ringcastd --jwt-public-key) and /tmp/tok/es256.tokens

Every run makes a fresh key. Token i (line i + 1, i from 0) carries sub=u<i>, iat=now and
exp=now+--ttl-s: one user per line, so a server that limits connections per user sees
--count distinct users. Prints the ringcastd flag for the key on stdout.

Needs Debian's python3-jwt and python3-cryptography (run it with /usr/bin/python3).
"""

import argparse
import os
import secrets
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHMS = ("HS256", "ES256")


def write_private(path, data):
    """Key material: created 0600, never world-readable even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def make_key(alg, directory):
    """(signing key for PyJWT, ringcastd flag and file)."""
    if alg == "HS256":
        # 64 characters of hex: 32 random bytes of entropy, ringcastd's minimum length.
        secret = secrets.token_hex(32)
        path = os.path.join(directory, "hs256.secret")
        write_private(path, secret.encode())
        return secret, ["--jwt-secret-file", path]
    key = ec.generate_private_key(ec.SECP256R1())
    write_private(os.path.join(directory, "es256-private.pem"),
                  key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    path = os.path.join(directory, "es256-public.pem")
    with open(path, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, ["--jwt-public-key", path]


def make_tokens(alg, count, directory, ttl_s=3600):
    """Writes the key and DIR/<alg>.tokens; returns (ringcastd flag and file, tokens path)."""
    if alg not in ALGORITHMS:
        raise ValueError(f"alg {alg!r} is not one of {', '.join(ALGORITHMS)}")
    os.makedirs(directory, exist_ok=True)
    key, flag = make_key(alg, directory)
    now = int(time.time())
    path = os.path.join(directory, alg.lower() + ".tokens")
    with open(path, "w") as f:
        for i in range(count):
            f.write(jwt.encode({"sub": f"u{i}", "iat": now, "exp": now + ttl_s}, key,
                               algorithm=alg) + "\n")
    return flag, path


def main(argv):
    p = argparse.ArgumentParser(prog="perf/jwt/make_tokens.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alg", required=True, choices=ALGORITHMS)
    p.add_argument("--count", type=int, required=True, help="tokens (users u0..u<count-1>)")
    p.add_argument("--dir", required=True, help="where the key and the tokens go")
    p.add_argument("--ttl-s", type=int, default=3600, help="exp - iat (default 3600)")
    a = p.parse_args(argv)
    if not 1 <= a.count <= 2_000_000:
        p.error("--count must be from 1 to 2000000 (ringcast-bench's --connections ceiling)")
    if a.ttl_s < 1:
        p.error("--ttl-s must be positive")
    flag, tokens = make_tokens(a.alg, a.count, a.dir, a.ttl_s)
    print(" ".join(flag))
    print(f"tokens: {tokens} ({a.count}, sub u0..u{a.count - 1}, exp in {a.ttl_s} s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
