"""What a restore lost, from the client ledger: the orders clients were given a final
answer for that the database no longer holds, and the span of answers they cover."""

from __future__ import annotations

from pathlib import Path

from chaos.db.reconcile import ledger_files, reconcile
from chaos.ledger import Entry, Ledger


def answer(t: float, order: str, status: int = 201) -> Entry:
    return Entry(t=t, key=f"k-{order}", status=status, order_id=order, order_status="confirmed", total_cents=100)


def test_nothing_lost_when_the_database_holds_every_answered_order() -> None:
    ledger = Ledger([answer(1, "a"), answer(2, "b"), Entry(t=3, key="k-c", status=503)])
    found = reconcile(ledger, {"a", "b"})
    assert (found.answered, found.lost, found.rpo_s) == (2, [], 0.0)


def test_the_lost_orders_and_the_span_of_answers_they_cover() -> None:
    # Kept up to t=10, lost from t=11 to t=14 (the archive's last segment), then an outage
    # (503s, no order), then orders taken again after the restore.
    entries = [answer(t, f"kept-{t}") for t in (5, 8, 10)]
    entries += [answer(t, f"lost-{t}") for t in (11, 12.5, 14)]
    entries += [Entry(t=15, key="k-down", status=503), answer(40, "after")]
    entries += [answer(41, "lost-12.5", status=201)]  # a repeat of a lost order's key: one order
    held = {"kept-5", "kept-8", "kept-10", "after"}
    found = reconcile(Ledger(entries), held)
    assert [item.order_id for item in found.lost] == ["lost-11", "lost-12.5", "lost-14"]
    assert found.lost[0].answered_at == 11 and found.lost[1].key == "k-lost-12.5"
    assert found.rpo_s == 4.0  # from the last kept answer (10) to the last lost one (14)
    assert found.as_dict()["rpo_orders"] == 3


def test_a_ledger_named_as_the_load_names_it(tmp_path: Path) -> None:
    for pid in (11, 12):
        (tmp_path / f"run-ledger-{pid}.jsonl").write_text("")
    (tmp_path / "other.jsonl").write_text("")
    found = ledger_files(str(tmp_path / "run-ledger-{pid}.jsonl"))
    assert [p.name for p in found] == ["run-ledger-11.jsonl", "run-ledger-12.jsonl"]
    assert ledger_files(str(tmp_path / "missing-*.jsonl")) == []
