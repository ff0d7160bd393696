"""The client ledger (chaos/ledger.py): its writer, its reader and its judgement."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from chaos import ledger
from chaos.ledger import Entry, Ledger, OrderFacts


def _entry(key: str = "k-1", status: int = 201, **change) -> Entry:
    base = dict(t=1.0, key=key, status=status, order_id="o-1", order_status="confirmed", total_cents=100)
    return Entry(**{**base, **change})


def test_the_writer_appends_one_json_line_per_answer_readable_at_once(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.jsonl"
    writer = ledger.Writer(path)
    writer.record(_entry())
    # Line-buffered: the line is in the file before the writer is closed.
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "t": 1.0,
            "key": "k-1",
            "status": 201,
            "order_id": "o-1",
            "order_status": "confirmed",
            "total_cents": 100,
            "replayed": False,
        }
    ]
    writer.record(Entry(t=2.0, key="k-2", status=0))
    blamed = Entry(t=2.5, key="k-3", status=503, latency_ms=4.5, retry_after="1", code="x", dependency="payments")
    writer.record(blamed)
    writer.close()
    ledger.Writer(path).record(_entry(t=3.0))  # a second writer appends, never truncates
    entries = ledger.read([path]).entries
    assert [e.t for e in entries] == [1.0, 2.0, 2.5, 3.0]
    assert entries[2] == blamed  # how an answer came is read back as written


def test_the_writer_creates_no_file_until_an_answer_and_fills_in_the_pid(tmp_path: Path) -> None:
    writer = ledger.Writer(tmp_path / "ledger-{pid}.jsonl")
    assert list(tmp_path.iterdir()) == []
    writer.record(_entry())
    writer.close()
    [written] = tmp_path.iterdir()
    assert written.name.startswith("ledger-") and written.name[7:-6].isdigit()


def test_many_writers_at_once_leave_whole_lines(tmp_path: Path) -> None:
    writer = ledger.Writer(tmp_path / "ledger.jsonl")

    def burst(n: int) -> None:
        for i in range(200):
            writer.record(_entry(key=f"k-{n}-{i}" + "x" * 300))

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    read = ledger.read([tmp_path / "ledger.jsonl"])
    assert read.skipped == 0 and len(read.entries) == 1600


def test_the_reader_skips_a_partial_last_line_left_by_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    writer = ledger.Writer(path)
    writer.record(_entry(t=1.0))
    writer.record(_entry(t=2.0, key="k-2"))
    writer.close()
    whole = path.read_text()
    path.write_text(whole + whole.splitlines()[0][:25])  # killed mid-write: no newline, half a line
    read = ledger.read([path])
    assert [e.key for e in read.entries] == ["k-1", "k-2"]
    assert read.skipped == 1
    assert ledger.summarise(read).skipped_lines == 1


def test_the_reader_merges_files_in_time_order(tmp_path: Path) -> None:
    for name, t in (("a", 3.0), ("b", 1.0)):
        writer = ledger.Writer(tmp_path / f"{name}.jsonl")
        writer.record(_entry(t=t, key=name))
        writer.close()
    assert [e.key for e in ledger.read([tmp_path / "a.jsonl", tmp_path / "b.jsonl"]).entries] == ["b", "a"]


def test_an_entry_from_an_answer() -> None:
    order = b'{"order_id": "o-9", "status": "payment_failed", "total_cents": 250, "items": []}'
    assert Entry.from_answer("k", 402, order, False, t=5.0) == Entry(5.0, "k", 402, "o-9", "payment_failed", 250)
    error = b'{"error": {"code": "overloaded", "message": "later"}}'
    assert Entry.from_answer("k", 429, error, False, t=5.0) == Entry(5.0, "k", 429)
    assert Entry.from_answer("k", 0, None, False, t=5.0) == Entry(5.0, "k", 0)
    assert Entry.from_answer("k", 502, b"<html>bad gateway", False, t=5.0) == Entry(5.0, "k", 502)
    assert Entry.from_answer("k", 201, order, True).replayed
    unavailable = Entry.from_answer("k", 503, error, False, t=5.0, code="breaker_open", dependency="payments")
    assert unavailable == Entry(5.0, "k", 503, code="breaker_open", dependency="payments")


def test_only_answers_with_an_order_are_final() -> None:
    assert _entry(status=201).final and _entry(status=402).final and _entry(status=409).final
    assert not _entry(status=409, order_id=None).final  # idempotency_key_reused
    assert not _entry(status=503).final and not Entry(1.0, "k", 0).final


def test_path_from_env() -> None:
    assert ledger.path_from_env({}) is None
    assert ledger.path_from_env({"CHAOSLAB_LEDGER": "  "}) is None
    assert ledger.path_from_env({"CHAOSLAB_LEDGER": "/tmp/l-{pid}.jsonl"}) == "/tmp/l-{pid}.jsonl"


def test_the_summary_counts_what_the_checks_cannot_judge() -> None:
    entries = [_entry(status=201), _entry(status=201, replayed=True), _entry(key="k-2", status=503)]
    entries += [Entry(1.0, "k-3", 0), Entry(1.0, "k-3", 429), Entry(1.0, "k-4", 500)]
    summary = ledger.summarise(Ledger(entries))
    assert summary.answers == 6 and summary.keys == 4 and summary.final_answers == 2 and summary.replayed == 1
    assert summary.status_5xx == 2 and summary.no_answer == 1
    assert summary.by_class == {"2xx": 2, "4xx": 1, "5xx": 2, "none": 1}
    assert summary.by_status == {"0": 1, "201": 2, "429": 1, "500": 1, "503": 1}


FACTS = {
    "o-1": OrderFacts("o-1", "k-1", "confirmed", 100),
    "o-2": OrderFacts("o-2", "k-2", "payment_failed", 200),
}


def _violations(*entries: Entry) -> dict[str, list[str]]:
    return {name: found for name, found in ledger.judge(Ledger(list(entries)), FACTS).items() if found}


def test_answers_that_the_database_keeps_are_clean() -> None:
    assert (
        _violations(
            Entry(0.5, "k-1", 503),
            _entry(),
            _entry(t=2.0, replayed=True),
            _entry(key="k-2", order_id="o-2", status=402, order_status="payment_failed", total_cents=200),
        )
        == {}
    )


def test_each_broken_promise_is_named() -> None:
    assert set(_violations(_entry(order_id="o-missing"))) == {"ledger_answers_match_orders"}
    assert set(_violations(_entry(total_cents=101))) == {"ledger_answers_match_orders"}
    crossed = _entry(t=2.0, order_id="o-2", status=402, order_status="payment_failed", total_cents=200)
    found = _violations(_entry(), crossed)
    assert set(found) == {"ledger_one_order_per_key"} and "o-2 (holds key k-2)" in found["ledger_one_order_per_key"][0]
    replay = _entry(t=2.0, status=402, order_status="payment_failed", replayed=True)
    assert set(_violations(_entry(), replay)) == {"ledger_repeats_first_answer", "ledger_answers_match_orders"}


def test_the_load_settings_name_the_ledger_only_when_asked() -> None:
    from loadtests.settings import UserSettings

    assert UserSettings.from_env({}).ledger_path is None
    assert UserSettings.from_env({"CHAOSLAB_LEDGER": "run/ledger-{pid}.jsonl"}).ledger_path == "run/ledger-{pid}.jsonl"
