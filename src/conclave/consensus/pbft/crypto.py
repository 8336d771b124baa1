"""Pure cryptographic helpers of the PBFT core: canonical encoding, digests, MACs, signatures.

Rules:
- Pure (DESIGN.md rule 3): no key generation from global randomness, no I/O. Keys arrive as
  data (`ReplicaKeys`, injected through the config); `dev_keys` derives them from a seed, for
  tests and development clusters only.
- Everything authenticated or digested is first turned into bytes by `canonical_bytes`, a
  length-prefixed, type-tagged encoding: equal values give equal bytes, and no two different
  values give the same bytes. Dataclass fields are encoded in declaration order; a message's
  `auth` field (its MAC or signature) is left out of its own payload.
- Normal-case messages that never have to convince a third party carry an HMAC-SHA256 over the
  pairwise key of sender and receiver (Castro and Liskov, TOCS 2002, section 3.2). Messages that
  are forwarded as proofs (pre-prepare and prepare inside prepared certificates, checkpoints,
  view-change, new-view) carry an Ed25519 signature, which any replica can check.
- Verification never raises on remote input: it returns False, and the replica drops and counts
  the message.
"""

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conclave.core.ids import NodeId

DIGEST_BYTES = 32
AUTH_FIELD = "auth"  # the field that carries a message's MAC or signature


def _frame(kind: bytes, body: bytes) -> bytes:
    return kind + len(body).to_bytes(4, "big") + body


def canonical_bytes(value: object, *, skip_auth: bool = False) -> bytes:
    """The canonical encoding of ints, bools, bytes, str, None, enums, tuples and dataclasses.

    With `skip_auth`, the top-level dataclass's `auth` field is left out (nested messages keep
    theirs: their signatures are part of the proof that the outer message carries).
    """
    if value is None:
        return b"N"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return b"T" if value else b"F"
    if isinstance(value, int):
        return _frame(b"i", str(value).encode())
    if isinstance(value, bytes):
        return _frame(b"b", value)
    if isinstance(value, str):
        return _frame(b"s", value.encode())
    if isinstance(value, Enum):
        return _frame(b"e", canonical_bytes(value.value))
    if isinstance(value, tuple):
        return _frame(b"t", b"".join(canonical_bytes(item) for item in value))
    if is_dataclass(value) and not isinstance(value, type):
        tag = getattr(type(value), "TAG", type(value).__name__)
        parts = [canonical_bytes(tag)]
        for f in fields(value):
            if skip_auth and f.name == AUTH_FIELD:
                continue
            parts.append(canonical_bytes(getattr(value, f.name)))
        return _frame(b"m", b"".join(parts))
    raise TypeError(f"no canonical encoding for {type(value).__name__}")


def digest_of(value: object) -> bytes:
    """SHA-256 of the canonical encoding of `value`."""
    return hashlib.sha256(canonical_bytes(value)).digest()


def auth_payload(message: object) -> bytes:
    """The bytes a message's MAC or signature covers: everything but its `auth` field."""
    return canonical_bytes(message, skip_auth=True)


def chain_digest(previous: bytes, value: object) -> bytes:
    """Extend a hash chain: SHA-256(previous || canonical(value))."""
    return hashlib.sha256(previous + canonical_bytes(value)).digest()


def checkpoint_state_digest(seq: int, snapshot: bytes, clients: object) -> bytes:
    """The digest a checkpoint at `seq` signs: the application snapshot and the client table.

    SHA-256 over (seq, SHA-256(snapshot), canonical(clients)): it covers the replicated state
    itself, so a state-transfer reply can be checked against a proof of 2f + 1 checkpoints.
    """
    snapshot_digest = hashlib.sha256(snapshot).digest()
    return digest_of(("pbft.checkpoint_state", seq, snapshot_digest, clients))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaKeys:
    """The key material of one replica, injected as data.

    `mac_keys` holds the pairwise HMAC key shared with every other replica; `signing_key` is the
    replica's raw 32-byte Ed25519 private key; `verify_keys` holds the raw 32-byte Ed25519
    public key of every replica (itself included). Never printed (repr=False).
    """

    mac_keys: tuple[tuple[NodeId, bytes], ...] = field(repr=False)
    signing_key: bytes = field(repr=False)
    verify_keys: tuple[tuple[NodeId, bytes], ...] = field(repr=False)


class KeyRing:
    """Loaded keys of one replica: computes and checks MACs and signatures."""

    def __init__(self, owner: NodeId, keys: ReplicaKeys) -> None:
        self._owner = owner
        self._mac_keys: Mapping[NodeId, bytes] = dict(keys.mac_keys)
        self._signer = Ed25519PrivateKey.from_private_bytes(keys.signing_key)
        self._verifiers: Mapping[NodeId, Ed25519PublicKey] = {
            replica: Ed25519PublicKey.from_public_bytes(raw) for replica, raw in keys.verify_keys
        }

    def mac(self, peer: NodeId, payload: bytes) -> bytes:
        """HMAC-SHA256 of `payload` under the key shared with `peer`."""
        return hmac.new(self._mac_keys[peer], payload, hashlib.sha256).digest()

    def mac_valid(self, peer: NodeId, payload: bytes, tag: bytes) -> bool:
        """True when `tag` is `peer`'s MAC of `payload` for this replica."""
        key = self._mac_keys.get(peer)
        if key is None:
            return False
        expected = hmac.new(key, payload, hashlib.sha256).digest()
        return hmac.compare_digest(expected, tag)

    def sign(self, payload: bytes) -> bytes:
        """This replica's Ed25519 signature of `payload`."""
        return self._signer.sign(payload)

    def signature_valid(self, signer: NodeId, payload: bytes, signature: bytes) -> bool:
        """True when `signature` is `signer`'s valid Ed25519 signature of `payload`."""
        verifier = self._verifiers.get(signer)
        if verifier is None:
            return False
        try:
            verifier.verify(signature, payload)
        except InvalidSignature:
            return False
        return True

    def knows(self, replica: NodeId) -> bool:
        """True when this ring holds a verification key for `replica`."""
        return replica in self._verifiers


def pairwise_mac_key(seed: bytes, a: NodeId, b: NodeId) -> bytes:
    """The development MAC key of the pair {a, b}, derived from `seed` (symmetric in a, b)."""
    low, high = sorted((a, b))
    return hashlib.sha256(b"pbft-mac|" + seed + b"|%d|%d" % (low, high)).digest()


def dev_signing_key(seed: bytes, replica: NodeId) -> bytes:
    """The development Ed25519 private key of `replica`, derived from `seed`."""
    return hashlib.sha256(b"pbft-sign|" + seed + b"|%d" % replica).digest()


def public_key_of(signing_key: bytes) -> bytes:
    """The raw public key of a raw Ed25519 private key."""
    private = Ed25519PrivateKey.from_private_bytes(signing_key)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def dev_keys(replica_ids: tuple[NodeId, ...], seed: bytes) -> dict[NodeId, ReplicaKeys]:
    """Deterministic keys for every replica, from one seed.

    For tests, the simulator and development clusters only: anyone who knows the seed can
    impersonate every replica. Production keys come from a real key-generation command.
    """
    ids = tuple(sorted(set(replica_ids)))
    verify = tuple((r, public_key_of(dev_signing_key(seed, r))) for r in ids)
    return {
        r: ReplicaKeys(
            mac_keys=tuple((p, pairwise_mac_key(seed, r, p)) for p in ids if p != r),
            signing_key=dev_signing_key(seed, r),
            verify_keys=verify,
        )
        for r in ids
    }


__all__ = [
    "AUTH_FIELD",
    "DIGEST_BYTES",
    "KeyRing",
    "ReplicaKeys",
    "auth_payload",
    "canonical_bytes",
    "chain_digest",
    "checkpoint_state_digest",
    "dev_keys",
    "digest_of",
    "pairwise_mac_key",
    "public_key_of",
]
