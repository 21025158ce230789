"""The server half of Cognito's SRP-6a password check (USER_SRP_AUTH -> PASSWORD_VERIFIER).

moto answers USER_SRP_AUTH with random SALT/SRP_B and accepts any PASSWORD_CLAIM_SIGNATURE, so any
password signs in. The sandbox puts a real challenge in moto's answer and checks the client's claim
before moto sees it. Conventions are Cognito's (amazon-cognito-identity-js AuthenticationHelper):
3072-bit group of RFC 5054 with g = 2, k = H(N | g), x = H(salt | H(poolName | userId | ":" | password)),
u = H(A | B), key = HKDF(S, u, "Caldera Derived Key")[:16], claim = HMAC(key, poolName | userId |
secretBlock | timestamp). Written independently of any client library on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

N_HEX = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)
N = int(N_HEX, 16)
G = 2


def pad_hex(value: int | str) -> str:
    """Hex of a non-negative number, padded so it reads as a positive big-endian byte string."""
    text = value if isinstance(value, str) else format(value, "x")
    if len(text) % 2:
        return "0" + text
    if text[0] in "89abcdefABCDEF":
        return "00" + text
    return text


def hex_hash(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


K = int(hex_hash("00" + N_HEX + "0" + format(G, "x")), 16)


def _derive_key(shared: int, scrambler: int) -> bytes:
    prk = hmac.new(bytes.fromhex(pad_hex(scrambler)), bytes.fromhex(pad_hex(shared)), hashlib.sha256).digest()
    return hmac.new(prk, b"Caldera Derived Key\x01", hashlib.sha256).digest()[:16]


@dataclass(frozen=True)
class PasswordChallenge:
    """What the server keeps between InitiateAuth and RespondToAuthChallenge."""

    pool_name: str  # the part of the pool id after "<region>_"
    user_id: str  # USER_ID_FOR_SRP
    salt_hex: str
    verifier: int
    small_b: int
    big_a: int
    big_b: int
    secret_block: str  # base64

    def claim(self, timestamp: str) -> str:
        """The PASSWORD_CLAIM_SIGNATURE a client knowing the password sends for ``timestamp``."""
        scrambler = int(hex_hash(pad_hex(self.big_a) + pad_hex(self.big_b)), 16)
        shared = pow(self.big_a * pow(self.verifier, scrambler, N), self.small_b, N)
        key = _derive_key(shared, scrambler)
        message = (
            self.pool_name.encode()
            + self.user_id.encode()
            + base64.b64decode(self.secret_block)
            + timestamp.encode()
        )
        return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()

    def accepts(self, signature: str, timestamp: str) -> bool:
        return hmac.compare_digest(self.claim(timestamp).encode(), signature.encode())


def new_challenge(*, user_pool_id: str, user_id: str, password: str, srp_a_hex: str) -> PasswordChallenge:
    """A fresh challenge for a client that sent ``SRP_A``; ValueError if A is not a valid public value."""
    big_a = int(srp_a_hex, 16)
    if big_a % N == 0:
        raise ValueError("SRP_A is a multiple of N")
    pool_name = user_pool_id.split("_", 1)[1]
    salt_hex = secrets.token_hex(16)
    identity = hashlib.sha256(f"{pool_name}{user_id}:{password}".encode()).hexdigest()
    verifier = pow(G, int(hex_hash(pad_hex(salt_hex) + identity), 16), N)
    small_b = secrets.randbelow(N - 2) + 1
    big_b = (K * verifier + pow(G, small_b, N)) % N
    return PasswordChallenge(
        pool_name=pool_name,
        user_id=user_id,
        salt_hex=salt_hex,
        verifier=verifier,
        small_b=small_b,
        big_a=big_a,
        big_b=big_b,
        secret_block=base64.b64encode(secrets.token_bytes(64)).decode(),
    )
