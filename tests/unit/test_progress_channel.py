"""The study's progress side channel: events written in a kernel, read back by the study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingestlab import progress_channel
from ingestlab.load import progress
from ingestlab.progress_channel import ENV_VAR, ChannelReader


@pytest.fixture
def channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "progress.jsonl"
    monkeypatch.setenv(ENV_VAR, str(path))
    return path


def _load_event(done: int) -> dict[str, float]:
    return {"elapsed_s": done / 1000, "sent": done - 10, "responses": done - 10, "errors": 1,
            "dropped": 10, "offered_rps": 1000.0, "achieved_rps": 990.0}


def test_without_a_channel_nothing_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert progress_channel.channel_path() is None
    assert progress_channel.emit("announce", experiment="ceiling", why="because") is False


def test_events_are_written_and_read_back_in_order(channel: Path) -> None:
    reader = ChannelReader(channel)
    assert reader.read() == []  # the file does not exist yet
    assert progress_channel.emit("progress", id="a", label="load constant", done=1, total=4)
    assert progress_channel.emit("end", id="a")
    events = reader.read()
    assert [(e["kind"], e["id"]) for e in events] == [("progress", "a"), ("end", "a")]
    assert events[0]["done"] == 1 and events[0]["total"] == 4 and events[0]["t"] > 0
    assert reader.read() == []  # only what came since
    progress_channel.emit("announce", experiment="soak", why="a rate")
    assert [e["kind"] for e in reader.read()] == ["announce"]


def test_a_line_still_being_written_waits_for_the_next_read(channel: Path) -> None:
    reader = ChannelReader(channel)
    whole = json.dumps({"kind": "end", "id": "x"})
    channel.write_text(whole[:7])
    assert reader.read() == []
    with channel.open("a") as f:
        f.write(whole[7:] + "\n")
    assert reader.read() == [{"kind": "end", "id": "x"}]


def test_the_load_engines_display_writes_to_the_channel_when_a_study_set_one(
    channel: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert progress.resolve_mode("auto") == "channel"
    assert progress.resolve_mode(True) == "channel"
    assert progress.resolve_mode("log") == "log"  # asked for by name: still honoured
    assert progress.resolve_mode(False) == "off"
    display = progress.make_display("auto", total=3000, desc="load constant")
    for done in (1000, 2000, 3000):
        display.update(_load_event(done))
    display.close()
    events = ChannelReader(channel).read()
    assert [e["kind"] for e in events] == ["progress"] * 4 + ["end"]
    assert [e["done"] for e in events[:4]] == [0, 1000, 2000, 3000]  # sent + dropped
    assert {e["id"] for e in events} == {events[0]["id"]}
    assert events[-2]["label"] == "load constant" and events[-2]["total"] == 3000
    assert events[-2]["info"] == {"offered": "1000/s", "achieved": "990/s", "errors": 1, "dropped": 10}
    assert capsys.readouterr() == ("", "")  # nothing where a notebook would show it


def test_without_a_channel_the_display_is_the_one_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("CI", "true")
    assert progress.resolve_mode("auto") == "log"


def test_announce_says_it_in_the_notebook_and_on_the_channel(
    channel: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingestlab.inputs import announce

    announce("ceiling", "no ceiling run in this study yet")
    assert capsys.readouterr().out == "ingestlab: running ceiling: no ceiling run in this study yet\n"
    [event] = ChannelReader(channel).read()
    assert event["kind"] == "announce"
    assert (event["experiment"], event["why"]) == ("ceiling", "no ceiling run in this study yet")
