"""AMI framing on bytes: real captures cut anywhere, odd encodings, garbage, bare LF."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.ami.framing import Framer, format_action, format_message, iter_messages, parse_message
from tests.conftest import AMI_FIXTURES

CN_STREAM = AMI_FIXTURES / "answered_cn_name_chanvars.ami"


def _headers(messages: list) -> list[tuple[tuple[str, str], ...]]:
    return [m.headers for m in messages]


def test_a_real_stream_frames_into_greeting_responses_and_every_event() -> None:
    data = CN_STREAM.read_bytes()
    messages = list(iter_messages(data))
    assert messages[0]["Greeting"] == "Asterisk Call Manager/11.0.0"
    assert (messages[1].response, messages[1].action_id) == ("Success", "gw-1")
    assert messages[-1].response == "Goodbye"
    events = [m for m in messages if m.event]
    assert len(events) == data.count(b"\r\nEvent: ") + data.startswith(b"Event: ")
    assert len(messages) == data.count(b"\r\n\r\n") + 1  # each blank line ends one; + the greeting


def test_splitting_a_real_stream_at_every_byte_offset_gives_the_same_messages() -> None:
    data = (AMI_FIXTURES / "page_noanswer.ami").read_bytes()
    whole = _headers(list(iter_messages(data)))
    for cut in range(1, len(data)):
        assert _headers(list(iter_messages([data[:cut], data[cut:]]))) == whole, f"cut at byte {cut}"


def test_a_stream_fed_one_byte_at_a_time_gives_the_same_messages() -> None:
    data = CN_STREAM.read_bytes()
    one_by_one = iter_messages(data[i:i + 1] for i in range(len(data)))
    assert _headers(list(one_by_one)) == _headers(list(iter_messages(data)))


def test_a_utf8_chinese_name_split_inside_a_character_survives() -> None:
    data = CN_STREAM.read_bytes()
    name_at = data.index("张三".encode()) + 1  # inside the first character's three bytes
    messages = list(iter_messages([data[:name_at], data[name_at:]]))
    assert "张三" in [m.get("CallerIDName") for m in messages]


def test_gbk_caller_name_is_decoded_through_gb18030() -> None:
    block = "Event: Newchannel\r\nCallerIDName: 张三\r\nCallerIDNum: 13800001111".encode("gbk")
    assert parse_message(block)["CallerIDName"] == "张三"


def test_undecodable_bytes_are_kept_escaped_and_later_messages_are_intact() -> None:
    real = (AMI_FIXTURES / "busy.ami").read_bytes()
    boundary = real.index(b"\r\n\r\n", len(real) // 2) + 4
    garbage = b"\xff\xfe\x80\x00junk\xc3\r\n\r\n"
    messages = list(iter_messages(real[:boundary] + garbage + real[boundary:]))
    expected = list(iter_messages(real))
    junk = messages[len(expected) - len(list(iter_messages(real[boundary:])))]
    assert junk.headers == (("", "\\xff\\xfe\\x80\x00junk\\xc3"),)  # kept, escaped, not dropped
    assert _headers([m for m in messages if m is not junk]) == _headers(expected)


def test_bare_lf_lines_frame_like_crlf() -> None:
    data = (AMI_FIXTURES / "busy.ami").read_bytes()
    bare = data.replace(b"\r\n", b"\n")
    assert _headers(list(iter_messages(bare))) == _headers(list(iter_messages(data)))


def test_repeated_chanvariable_headers_are_all_kept_in_order() -> None:
    first = next(m for m in iter_messages(CN_STREAM.read_bytes()) if m.get("ChanVariable"))
    assert first.get_all("ChanVariable") == ["CALLERID(name)=张三", "DIALSTATUS="]
    assert first.get("chanvariable") == "CALLERID(name)=张三"


def test_received_time_comes_from_the_caller_and_timestamp_wins_for_time() -> None:
    received = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    framer = Framer()
    messages = framer.feed(CN_STREAM.read_bytes(), received)
    stamped = next(m for m in messages if m.get("Timestamp"))
    booted = next(m for m in messages if m.event == "FullyBooted")
    assert (stamped.time_source, stamped.time) == ("pbx", datetime.fromtimestamp(float(stamped["Timestamp"]), UTC))
    assert (booted.time_source, booted.time) == ("received", received)


def test_a_peer_that_never_ends_a_message_cannot_grow_the_buffer_forever() -> None:
    framer = Framer(max_message_bytes=1000)
    framer.feed(b"Asterisk Call Manager/11.0.0\r\n" + b"X" * 5000)
    assert framer.pending == 0 and framer.discarded_bytes == 5000
    assert framer.feed(b"Event: Hangup\r\nChannel: PJSIP/8001-1\r\n\r\n")[0]["Channel"] == "PJSIP/8001-1"


def test_actions_without_a_greeting_frame_from_the_first_line() -> None:
    actions = Framer().feed(format_action("Login", "a-1", Username="u", Secret="s") + format_action("Ping", "a-2"))
    assert [(a["Action"], a.action_id) for a in actions] == [("Login", "a-1"), ("Ping", "a-2")]


def test_format_message_round_trips_a_real_stream() -> None:
    data = CN_STREAM.read_bytes()
    assert b"".join(format_message(m) for m in iter_messages(data)) == data
