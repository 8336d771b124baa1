"""Pure checks of PBFT proofs and the new-view computation (OSDI 1999, section 4.4).

Rules:
- Every function here judges remote input: it returns a reason string (or None when the input
  is valid), never raises. The replica drops and counts what these functions reject.
- A prepared certificate proves itself to a third party: a pre-prepare signed by the primary
  of its view, and 2f prepares signed by distinct backups of that view, all for the same view,
  sequence number and digest, with the digest matching the batch.
- A checkpoint proof is 2f + 1 signed checkpoints of distinct replicas for one sequence number
  and one state digest.
- The new-view set O is a function of the view-change set alone (`new_view_plan`), so backups
  recompute it and accept a new-view only if the primary's pre-prepares are exactly that.
"""

from conclave.consensus.pbft.crypto import KeyRing, auth_payload, digest_of
from conclave.consensus.pbft.messages import (
    Checkpoint,
    NewView,
    PreparedCertificate,
    PrePrepare,
    Request,
    Seq,
    ViewChange,
)
from conclave.consensus.pbft.settings import PbftConfig

NULL_BATCH: tuple[Request, ...] = ()  # the null request of OSDI 1999, section 4.4
PlanItem = tuple[Seq, bytes, tuple[Request, ...]]


def batch_problem(batch: tuple[Request, ...], digest: bytes, config: PbftConfig) -> str | None:
    """Why a batch cannot be ordered under `digest`, or None."""
    if len(batch) > config.requests_per_batch_max:
        return f"batch of {len(batch)} requests exceeds requests_per_batch_max"
    for request in batch:
        if not isinstance(request, Request):
            return "batch holds a non-request"
        if len(request.operation) > config.operation_bytes_max:
            return "operation exceeds operation_bytes_max"
    if digest_of(batch) != digest:
        return "digest does not match the batch"
    return None


def certificate_problem(
    cert: PreparedCertificate,
    *,
    stable_seq: Seq,
    new_view: int,
    config: PbftConfig,
    ring: KeyRing,
) -> str | None:
    """Why `cert` does not prove that its request prepared, or None."""
    pp = cert.pre_prepare
    if not stable_seq < pp.seq <= stable_seq + config.watermark_window_seqs:
        return f"certificate for seq {pp.seq} outside the watermarks of {stable_seq}"
    if pp.view >= new_view:
        return f"certificate of view {pp.view} is not before view {new_view}"
    if pp.src != config.primary_of(pp.view):
        return "certificate pre-prepare not from the primary of its view"
    problem = batch_problem(pp.batch, pp.digest, config)
    if problem is not None:
        return f"certificate: {problem}"
    if not ring.signature_valid(pp.src, auth_payload(pp), pp.auth):
        return "certificate pre-prepare has a bad signature"
    if len(cert.prepares) > config.n:
        return "certificate holds too many prepares"
    signers: list[int] = []
    for prepare in cert.prepares:
        if (prepare.view, prepare.seq, prepare.digest) != (pp.view, pp.seq, pp.digest):
            return "certificate prepare does not match its pre-prepare"
        if prepare.src == pp.src or prepare.src in signers:
            return "certificate prepare from the primary or a repeated backup"
        if not ring.signature_valid(prepare.src, auth_payload(prepare), prepare.auth):
            return "certificate prepare has a bad signature"
        signers.append(prepare.src)
    if len(signers) < config.prepared_quorum:
        return f"certificate has {len(signers)} prepares, needs {config.prepared_quorum}"
    return None


def checkpoint_proof_problem(
    stable_seq: Seq, proof: tuple[Checkpoint, ...], config: PbftConfig, ring: KeyRing
) -> str | None:
    """Why `proof` does not prove a stable checkpoint at `stable_seq`, or None."""
    if stable_seq == 0:
        return None if not proof else "checkpoint proof for the initial state"
    if stable_seq < 0 or stable_seq % config.checkpoint_interval_seqs != 0:
        return f"stable seq {stable_seq} is not a checkpoint"
    if not config.commit_quorum <= len(proof) <= config.n:
        return f"checkpoint proof of {len(proof)} messages"
    signers: list[int] = []
    for checkpoint in proof:
        if checkpoint.seq != stable_seq or checkpoint.state_digest != proof[0].state_digest:
            return "checkpoint proof messages do not match"
        if checkpoint.src in signers or checkpoint.src not in config.replica_ids:
            return "checkpoint proof from a repeated or unknown replica"
        if not ring.signature_valid(checkpoint.src, auth_payload(checkpoint), checkpoint.auth):
            return "checkpoint proof has a bad signature"
        signers.append(checkpoint.src)
    return None


def view_change_problem(vc: ViewChange, config: PbftConfig, ring: KeyRing) -> str | None:
    """Why a (signature-checked) view-change message is invalid, or None."""
    problem = checkpoint_proof_problem(vc.stable_seq, vc.checkpoint_proof, config, ring)
    if problem is not None:
        return problem
    if len(vc.prepared) > config.watermark_window_seqs:
        return "more prepared certificates than the watermark window"
    previous_seq = vc.stable_seq
    for cert in vc.prepared:
        if cert.pre_prepare.seq <= previous_seq:
            return "prepared certificates not in increasing sequence order"
        previous_seq = cert.pre_prepare.seq
        problem = certificate_problem(
            cert, stable_seq=vc.stable_seq, new_view=vc.new_view, config=config, ring=ring
        )
        if problem is not None:
            return problem
    return None


def new_view_plan(view_changes: tuple[ViewChange, ...]) -> tuple[Seq, tuple[PlanItem, ...]]:
    """The lowest sequence number of the new view's window, and the set O (OSDI 1999, 4.4).

    min-s is the highest stable checkpoint in the set; for every seq in (min-s, max-s] the new
    primary re-proposes the request of the prepared certificate with the highest view, or the
    null request when no certificate names that seq.
    """
    min_seq = max((vc.stable_seq for vc in view_changes), default=0)
    best: dict[Seq, PrePrepare] = {}
    for vc in view_changes:
        for cert in vc.prepared:
            pp = cert.pre_prepare
            if pp.seq <= min_seq:
                continue
            known = best.get(pp.seq)
            # Ties (same view) cannot carry two digests among valid certificates: that would
            # need a correct backup to sign two prepares for one view and seq. The digest
            # breaks the tie anyway, so the plan stays a function of the set.
            if known is None or (pp.view, pp.digest) > (known.view, known.digest):
                best[pp.seq] = pp
    max_seq = max(best, default=min_seq)
    plan: list[PlanItem] = []
    for seq in range(min_seq + 1, max_seq + 1):
        chosen = best.get(seq)
        if chosen is None:
            plan.append((seq, digest_of(NULL_BATCH), NULL_BATCH))
        else:
            plan.append((seq, chosen.digest, chosen.batch))
    return min_seq, tuple(plan)


def new_view_problem(nv: NewView, config: PbftConfig, ring: KeyRing) -> str | None:
    """Why a (signature-checked) new-view message is invalid, or None."""
    vcs = nv.view_changes
    if not config.commit_quorum <= len(vcs) <= config.n:
        return f"new-view carries {len(vcs)} view changes"
    senders = [vc.src for vc in vcs]
    if senders != sorted(set(senders)) or any(s not in config.replica_ids for s in senders):
        return "new-view view changes not from distinct replicas in order"
    for vc in vcs:
        if vc.new_view != nv.view:
            return f"new-view holds a view change for view {vc.new_view}"
        if not ring.signature_valid(vc.src, auth_payload(vc), vc.auth):
            return "new-view holds a view change with a bad signature"
        problem = view_change_problem(vc, config, ring)
        if problem is not None:
            return f"new-view holds an invalid view change: {problem}"
    _, plan = new_view_plan(vcs)
    if len(plan) != len(nv.pre_prepares):
        return "new-view pre-prepares differ from the recomputed set O"
    for (seq, digest, batch), pp in zip(plan, nv.pre_prepares, strict=True):
        if (pp.src, pp.view, pp.seq, pp.digest, pp.batch) != (nv.src, nv.view, seq, digest, batch):
            return f"new-view pre-prepare for seq {seq} differs from the recomputed set O"
        if not ring.signature_valid(pp.src, auth_payload(pp), pp.auth):
            return "new-view pre-prepare has a bad signature"
    return None


__all__ = [
    "NULL_BATCH",
    "PlanItem",
    "batch_problem",
    "certificate_problem",
    "checkpoint_proof_problem",
    "new_view_plan",
    "new_view_problem",
    "view_change_problem",
]
