"""The approval book: one pending decision per workload, superseded, expired, rejected, restored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.decisions.approvals import ApprovalBook, NotPending
from hub.decisions.model import Decision

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def draft(workload: str = "inference/llama", desired: int = 4, *, revision: int = 1, **kw: Any) -> Decision:
    return Decision(workload=workload, policy_id="p", policy_revision=revision, mode="approval", current_replicas=2,
                    desired_replicas=desired, reason="r", inputs={}, placement_before={"a/H100": 2},
                    placement_after={"a/H100": desired}, **kw)


def test_a_proposal_waits_until_it_expires() -> None:
    book = ApprovalBook()
    (pending,) = book.propose(draft(), ttl_s=60, now=T0)
    assert pending.approval is not None and pending.approval.state == "pending"
    assert pending.approval.expires_at == T0 + timedelta(seconds=60) and pending.commands == []
    assert book.pending() == [pending] and book.get(pending.id) is pending and len(book) == 1
    assert book.expire(T0 + timedelta(seconds=59)) == []
    (expired,) = book.expire(T0 + timedelta(seconds=60))
    assert expired.id == pending.id and expired.approval is not None and expired.approval.state == "expired"
    assert expired.approval.at == T0 + timedelta(seconds=60) and expired.approval.by is None
    assert len(book) == 0 and book.get(pending.id) is None
    with pytest.raises(NotPending) as e:
        book.take(pending.id, known=expired)
    assert e.value.reason == "expired"


def test_the_same_recommendation_again_is_not_news() -> None:
    book = ApprovalBook()
    (first,) = book.propose(draft(), ttl_s=60, now=T0)
    assert book.propose(draft(), ttl_s=60, now=T0 + timedelta(seconds=30)) == []
    assert book.pending() == [first]  # and it keeps its own expiry
    assert first.approval is not None and first.approval.expires_at == T0 + timedelta(seconds=60)


@pytest.mark.parametrize("change", [{"desired": 5}, {"revision": 2}, {"routing": [{"request_class": "long"}]}])
def test_a_different_recommendation_supersedes_the_pending_one(change: dict[str, Any]) -> None:
    book = ApprovalBook()
    (first,) = book.propose(draft(), ttl_s=60, now=T0)
    old, new = book.propose(draft(**change), ttl_s=60, now=T0 + timedelta(seconds=10))
    assert old.id == first.id and old.approval is not None and old.approval.state == "superseded"
    assert old.approval.superseded_by == new.id and old.approval.at == T0 + timedelta(seconds=10)
    assert book.pending() == [new] and book.get(first.id) is None
    with pytest.raises(NotPending) as e:
        book.take(first.id, known=old)
    assert e.value.reason == "superseded"


def test_one_pending_decision_per_workload() -> None:
    book = ApprovalBook()
    (a,) = book.propose(draft("inference/a"), ttl_s=60, now=T0)
    (b,) = book.propose(draft("inference/b"), ttl_s=60, now=T0 + timedelta(seconds=1))
    assert book.pending() == [a, b] and book.pending_for("inference/b") is b


def test_withdraw_supersedes_with_no_successor() -> None:
    book = ApprovalBook()
    book.propose(draft(), ttl_s=60, now=T0)
    assert book.withdraw("inference/other", why="x", now=T0) is None
    settled = book.withdraw("inference/llama", why="no change needed", now=T0)
    assert settled is not None and settled.approval is not None
    assert (settled.approval.state, settled.approval.comment, settled.approval.superseded_by) == (
        "superseded", "no change needed", None)
    assert len(book) == 0


def test_a_rejection_holds_the_same_recommendation_back_for_the_ttl_but_not_a_new_one() -> None:
    book = ApprovalBook()
    (pending,) = book.propose(draft(), ttl_s=60, now=T0)
    rejected = book.settle(book.take(pending.id), "rejected", now=T0, by="alice", comment="not now", hold_s=60)
    assert rejected.approval is not None and (rejected.approval.state, rejected.approval.by) == ("rejected", "alice")
    assert book.propose(draft(), ttl_s=60, now=T0 + timedelta(seconds=59)) == []
    (other,) = book.propose(draft(desired=3), ttl_s=60, now=T0 + timedelta(seconds=1))  # a new one: at once
    book.withdraw("inference/llama", why="x", now=T0 + timedelta(seconds=2))
    (again,) = book.propose(draft(), ttl_s=60, now=T0 + timedelta(seconds=61))  # the hold is over
    assert again.approval is not None and again.approval.state == "pending" and again.id != pending.id
    with pytest.raises(NotPending) as e:
        book.take(pending.id, known=rejected)
    assert e.value.reason == "rejected" and other.id != again.id


def test_take_says_why_a_decision_cannot_be_settled() -> None:
    book = ApprovalBook()
    with pytest.raises(KeyError):
        book.take("nope")
    enforced = draft().model_copy(update={"mode": "enforce"})
    with pytest.raises(NotPending) as e:
        book.take(enforced.id, known=enforced)
    assert e.value.reason == "not_approval"
    (pending,) = book.propose(draft(), ttl_s=60, now=T0)
    approved = book.settle(book.take(pending.id), "approved", now=T0, by="bob")
    with pytest.raises(NotPending) as e:
        book.take(pending.id, known=approved)
    assert e.value.reason == "approved"
    with pytest.raises(NotPending) as e:  # a record left saying pending that the book does not hold
        book.take(pending.id, known=pending)
    assert e.value.reason == "superseded"


def test_restore_takes_back_what_still_waits_and_expires_the_rest() -> None:
    old = ApprovalBook()
    (a,) = old.propose(draft("inference/a"), ttl_s=60, now=T0)
    (b,) = old.propose(draft("inference/b"), ttl_s=600, now=T0)
    newer = old.propose(draft("inference/b", desired=6), ttl_s=600, now=T0 + timedelta(seconds=1))[-1]
    c = draft("inference/c").model_copy(update={"mode": "enforce"})
    book = ApprovalBook()
    # As the journal reads them back: b's record still pending (its superseded revision was lost).
    settled = book.restore([c, newer, b, a], now=T0 + timedelta(seconds=120))
    assert [(d.id, d.approval.state if d.approval else None) for d in settled] == [
        (b.id, "superseded"), (a.id, "expired")]
    assert book.pending() == [newer]


# --- properties over random sequences of operations -------------------------------------------------

WORKLOADS = ("inference/a", "inference/b", "inference/c")
OPS = st.lists(st.one_of(
    st.tuples(st.just("propose"), st.sampled_from(WORKLOADS), st.integers(1, 3), st.integers(1, 2)),
    st.tuples(st.just("withdraw"), st.sampled_from(WORKLOADS)),
    st.tuples(st.just("wait"), st.integers(1, 90)),
    st.tuples(st.just("approve"), st.integers(0, 5)),
    st.tuples(st.just("reject"), st.integers(0, 5)),
), max_size=60)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(OPS)
def test_the_book_keeps_its_invariants_under_any_sequence(ops: list[tuple[Any, ...]]) -> None:
    """At most one pending decision per workload; a decision leaves pending once and never returns;
    nothing pending outlives its expiry past an ``expire``; a rejection holds back only the same
    recommendation, for the ttl, until a different one comes."""
    book, now, ttl = ApprovalBook(), T0, 60
    settled: dict[str, str] = {}
    seen: list[Decision] = []
    rejected_at: dict[str, tuple[Decision, datetime]] = {}

    def record(records: list[Decision]) -> None:
        for r in records:
            assert r.approval is not None
            if r.approval.state == "pending":
                assert r.id not in settled
            else:
                assert r.id not in settled, f"{r.id} settled twice"
                settled[r.id] = r.approval.state
                assert r.approval.at == now
            seen.append(r)

    for op in ops:
        if op[0] == "propose":
            _, workload, desired, revision = op
            before = book.pending_for(workload)
            out = book.propose(draft(workload, desired, revision=revision), ttl_s=ttl, now=now)
            held = rejected_at.get(workload)
            if before is not None and before.desired_replicas == desired and before.policy_revision == revision:
                assert out == []
            elif held is not None and now < held[1] + timedelta(seconds=ttl) and (
                    held[0].desired_replicas, held[0].policy_revision) == (desired, revision):
                assert out == []
            else:
                rejected_at.pop(workload, None)  # a different recommendation came: the hold is over
                assert out and out[-1].approval is not None and out[-1].approval.state == "pending"
                assert out[-1].approval.expires_at == now + timedelta(seconds=ttl)
                if before is not None:
                    assert out[0].id == before.id and out[0].approval is not None
                    assert out[0].approval.superseded_by == out[-1].id
            record(out)
        elif op[0] == "withdraw":
            w = book.withdraw(op[1], why="x", now=now)
            record([] if w is None else [w])
        elif op[0] == "wait":
            now += timedelta(seconds=op[1])
            record(book.expire(now))
            assert all(d.approval is not None and d.approval.expires_at > now for d in book.pending())
        else:
            pending = book.pending()
            if not pending:
                continue
            target = book.take(pending[op[1] % len(pending)].id)
            state = "approved" if op[0] == "approve" else "rejected"
            out = book.settle(target, state, now=now, by="x", hold_s=ttl)
            if state == "rejected":
                rejected_at[target.workload] = (target, now)
            record([out])
        pending = book.pending()
        assert len({d.workload for d in pending}) == len(pending) == len(book)
        assert all(d.id not in settled for d in pending)
        for d in pending:
            assert book.get(d.id) is d and book.pending_for(d.workload) is d
    for decision_id, state in settled.items():
        assert book.get(decision_id) is None
        with pytest.raises(NotPending) as e:
            known = next(r for r in reversed(seen) if r.id == decision_id)
            book.take(decision_id, known=known)
        assert e.value.reason == state
