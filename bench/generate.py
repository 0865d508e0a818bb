"""Deterministic test data for the benchmarks: Volt JSON lines, Kannel access-log lines, Twilio callbacks.

The shapes follow the captures in ../shared/samples (Kannel 1.4.5 default access-log format, Twilio
status-callback and inbound webhooks), with the same mix of event kinds, so the parse + map figures are
for realistic lines, not for one line repeated. Files are written once under bench/out and reused:
the name carries the line count and GENERATOR_VERSION, and a file appears only when complete.
"""

from __future__ import annotations

import os
import random
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Bump when a generator's output changes, so stale cached files are not reused.
GENERATOR_VERSION = 2
BLOCK_LINES = 20_000  # lines joined per write

GSM_TEXTS = (
    "Your verification code is {n}. It expires in 10 minutes. Do not share it.",
    "AcmeBank: a payment of GBP {n}.44 to TESCO STORES was approved on card ending 3828.",
    "Your parcel {n} is out for delivery today between 10:00 and 14:00.",
    "Password reset requested. If this wasn't you, call us on 0800 123 4567.",
    "Flash sale! 20% off everything this weekend with code SAVE20. Reply STOP to opt out.",
    "Meeting moved to 15:00 in room 4B ~ bring the Q3 numbers {{draft}}.",
    "Balance: ...{n}. Top up at acme.example/topup [ref 5512]",
    "Test {n}",
    "Dear Hiro, thank you for your order #{n}. We have received your payment of GBP 590.44 and your items "
    "will be dispatched within 2 working days. You can track the parcel at any time at acme.example/track "
    "using the reference above. If you have any questions, reply to this message or call our customer care "
    "team on 0800 123 4567 (Mon-Fri 8am-8pm).",
    "Hi George! Your weekly summary: 3 workouts completed, 12,450 steps per day on average, 7h12m average "
    "sleep. You are 82% of the way to your monthly goal - keep it up! Reply STOP to unsubscribe.",
)
UNICODE_TEXTS = (
    "Ваш код подтверждения: {n}. Никому его не сообщайте.",  # noqa: RUF001 - UCS-2 on purpose
    "尊敬的客户，您的账户已于今天{n}成功登录。",  # noqa: RUF001
    "🎄 Season's greetings from all of us at Acme! 🎁 Enjoy 25% off with code XMAS25 ❄️",
    "ご予約ありがとうございます。{n}時にお待ちしております。",
)
MO_TEXTS = ("HELP", "STOP", "YES", "Where is my order {n}?", "Thanks!")
NUMBERS = ("+447700900{n:03d}", "07700900{n:03d}", "00447700900{n:03d}", "447700900{n:03d}", "+3361234{n:04d}",
           "+1202555{n:04d}", "003361234{n:04d}")
SENDERS = ("ShopNow", "AcmeBank", "CityClinic", "Uber-Eats", "INFO", "88001", "38200", "60123", "+447860012345",
           "447860012345", "+14155550100")
PROVIDERS = ("twilio", "telnyx", "bandwidth", "smpp", "plivo", "vonage", "sinch", "infobip")
UNKNOWN_PROVIDERS = ("Twilio", "acme-sms", "clickatell", "textlocal", "")
STATUSES = ("delivered", "sent", "undelivered", "failed", "queued", "received")


def _lines_to_file(path: Path, lines: Iterator[str]) -> Path:
    """Write all lines to `path` via a temporary name, so an interrupted run never leaves a half file."""
    tmp = path.with_suffix(path.suffix + ".part")
    block: list[str] = []
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in lines:
            block.append(line)
            if len(block) >= BLOCK_LINES:
                fh.write("\n".join(block) + "\n")
                block.clear()
        if block:
            fh.write("\n".join(block) + "\n")
    os.replace(tmp, path)
    return path


def _iso(base: datetime, seconds: int) -> str:
    return (base + timedelta(seconds=seconds)).isoformat()


def volt_lines(count: int, *, seed: int = 1, id_prefix: str = "bench") -> Iterator[str]:
    """Records already in Volt's shape: 60% full messages, 40% status-only updates (ids unique per line)."""
    rnd = random.Random(seed)
    base = datetime(2026, 11, 27, 1, 35, tzinfo=UTC)
    for i in range(count):
        provider = PROVIDERS[i % len(PROVIDERS)]
        created = _iso(base, i // 50)
        if rnd.random() < 0.6:
            body = GSM_TEXTS[rnd.randrange(len(GSM_TEXTS))].format(n=rnd.randrange(100000, 999999))
            yield (f'{{"id":"{id_prefix}-{i:09d}","provider":"{provider}","from_number":"+1202555{i % 10000:04d}",'
                   f'"to_number":"+4477009{rnd.randrange(10000, 99999)}","body":"{body}","status":"sent",'
                   f'"direction":"outbound","message_type":"SMS","segment_count":{1 + len(body) // 160},'
                   f'"message_created_at":"{created}","message_sent_at":"{created}",'
                   f'"message_profile_id":"MG961e38b5146c0b07d078f53dec9b699a"}}')
        else:
            status = STATUSES[rnd.randrange(4)]
            error = ',"error_code":"30003","error_message":"Unreachable destination handset"' \
                if status in ("undelivered", "failed") else ""
            yield (f'{{"id":"{id_prefix}-{i:09d}","provider":"{provider}","status":"{status}",'
                   f'"message_finalized_at":"{created}"{error}}}')


def volt_hard_lines(count: int, *, seed: int = 4) -> Iterator[str]:
    """Volt-shaped records where one line in three names a provider Volt does not know (refused), and each
    line carries a new second: the contract check and the refusal path cannot hide behind a cache."""
    rnd = random.Random(seed)
    base = datetime(2026, 11, 27, 1, 35, tzinfo=UTC)
    for i, line in enumerate(volt_lines(count, seed=seed, id_prefix="hard")):
        created = _iso(base, i)
        line = line.replace(_iso(base, i // 50), created)
        if i % 3 == 2:
            line = line.replace(f'"provider":"{PROVIDERS[i % len(PROVIDERS)]}"',
                                f'"provider":"{UNKNOWN_PROVIDERS[rnd.randrange(len(UNKNOWN_PROVIDERS))]}"', 1)
        yield line


def _ucs2_hex(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def kannel_lines(count: int, *, seed: int = 2) -> Iterator[str]:
    """Bearerbox access-log lines, default format, in the sample's mix.

    Per outbound message: `Sent SMS`, the SMSC's `ACK/` (DLR type 8), and later receipts with the SMPP
    receipt text (type 4 ENROUTE/ACCEPTD sometimes, then type 1 DELIVRD or type 2 UNDELIV); some inbound
    `Receive SMS`, about 1 in 8 messages in UCS-2 (coding 2, hex text), and a few `REJECTED Send SMS` with
    their NACK. Lines come out in time order, receipts a few messages after their submit.
    """
    rnd = random.Random(seed)
    start = datetime(2026, 11, 27, 2, 35, 2)
    later: deque[tuple[int, str]] = deque()  # (emit after message number, line body)
    emitted = 0
    message = 0
    fid_num = 1525260275
    yield f"{start:%Y-%m-%d %H:%M:%S} Log begins"
    emitted += 1
    while emitted < count:
        when = start + timedelta(seconds=message // 4)
        now = f"{when:%Y-%m-%d %H:%M:%S}"
        out: list[str] = []
        while later and later[0][0] <= message:
            out.append(f"{now} {later.popleft()[1]}")
        roll = rnd.random()
        n = rnd.randrange(1000, 9999)
        if roll < 0.06:
            smsc, act = ("vodafone_uk", "vf_kannel") if n % 3 else ("orange_fr", "or_kannel")
            text = MO_TEXTS[n % len(MO_TEXTS)].format(n=n)
            out.append(f"{now} Receive SMS [SMSC:{smsc}] [SVC:] [ACT:{act}] [BINF:] [FID:] [META:?smpp?] "
                       f"[from:+447700900{n % 1000:03d}] [to:88001] [flags:-1:0:-1:0:-1] "
                       f"[msg:{len(text.encode())}:{text}] [udh:0:]")
        elif roll < 0.075:
            sender, to = SENDERS[n % len(SENDERS)], f"+99912{n:06d}"
            text = GSM_TEXTS[0].format(n=n)
            out.append(f"{now} REJECTED Send SMS [SMSC:vodafone_uk] [SVC:tester] [ACT:] [BINF:] [FID:] "
                       f"[META:?smpp_resp?] [from:{sender}] [to:{to}] [flags:-1:0:-1:-1:31] "
                       f"[msg:{len(text)}:{text}] [udh:0:]")
            out.append(f"{now} Receive DLR [SMSC:vodafone_uk] [SVC:tester] [ACT:] [BINF:] [FID:] "
                       f"[META:?smpp_resp??orig_msg?dlr_mask=31&] [from:{sender}] [to:{to}] "
                       f"[flags:-1:-1:-1:-1:16] [msg:43:NACK/0x0000000b/Invalid Destination Address] [udh:0:]")
        else:
            if n % 8:
                smsc, act = "vodafone_uk", "vf_kannel"
                fid_num += rnd.randrange(1, 9)
                fid = str(fid_num)
                date = f"{when:%y%m%d%H%M}"
            else:
                smsc, act = "orange_fr", "or_kannel"
                fid = f"{rnd.getrandbits(128):032x}"
                fid = f"{fid[:8]}-{fid[8:12]}-{fid[12:16]}-{fid[16:20]}-{fid[20:]}"
                date = f"{when:%y%m%d%H%M%S}"
            sender = SENDERS[rnd.randrange(len(SENDERS))]
            to = NUMBERS[rnd.randrange(len(NUMBERS))].format(n=rnd.randrange(1000))
            if rnd.random() < 0.125:
                coding, text = 2, _ucs2_hex(UNICODE_TEXTS[n % len(UNICODE_TEXTS)].format(n=n))
                length = len(text) // 2
                excerpt = ""
            else:
                coding, text = 0, GSM_TEXTS[rnd.randrange(len(GSM_TEXTS))].format(n=n)
                length = len(text)
                excerpt = text[:20]
            common = f"[SVC:tester] [ACT:] [BINF:] [FID:{fid}]"
            parties = f"[from:{sender}] [to:{to}]"
            out.append(f"{now} Sent SMS [SMSC:{smsc}] {common} [META:?smpp_resp?] {parties} "
                       f"[flags:-1:{coding}:-1:-1:31] [msg:{length}:{text}] [udh:0:]")
            out.append(f"{now} Receive DLR [SMSC:{smsc}] {common} [META:?smpp_resp??orig_msg?dlr_mask=31&] "
                       f"{parties} [flags:-1:-1:-1:-1:8] [msg:4:ACK/] [udh:0:]")
            receipt_meta = f"[SMSC:{smsc}] [SVC:tester] [ACT:{act}] [BINF:] [FID:{fid}] " \
                           f"[META:?orig_msg?dlr_mask=31&?smpp?dlr_err=%03%00%00&] {parties}"
            if rnd.random() < 0.3:
                stat = "ENROUTE" if n % 2 else "ACCEPTD"
                receipt = (f"id:{fid} sub:001 dlvrd:000 submit date:{date} done date:{date} stat:{stat} "
                           f"err:000 text:{excerpt}")
                later.append((message + 2, f"Receive DLR {receipt_meta} [flags:-1:-1:-1:-1:4] "
                                           f"[msg:{len(receipt)}:{receipt}] [udh:0:]"))
            if rnd.random() < 0.9:
                delivered = rnd.random() < 0.9
                dlr_type, stat, err, dlvrd = (1, "DELIVRD", "000", "001") if delivered else \
                    (2, "UNDELIV", "001", "000")
                receipt = (f"id:{fid} sub:001 dlvrd:{dlvrd} submit date:{date} done date:{date} stat:{stat} "
                           f"err:{err} text:{excerpt}")
                later.append((message + 5, f"Receive DLR {receipt_meta} [flags:-1:-1:-1:-1:{dlr_type}] "
                                           f"[msg:{len(receipt)}:{receipt}] [udh:0:]"))
        message += 1
        for line in out:
            if emitted >= count:
                return
            yield line
            emitted += 1


def kannel_hard_lines(count: int, *, seed: int = 5) -> Iterator[str]:
    """Kannel lines that are all records, one new second per line: `Sent SMS`, then a few lines later its final
    receipt (DELIVRD or UNDELIV, 12-digit SMPP dates), no ACKs or other skipped lines. No time repeats, so every
    line pays for its time parsing; numbers repeat as they do in traffic (a few senders, many recipients)."""
    rnd = random.Random(seed)
    start = datetime(2026, 11, 27, 2, 35, 2)
    later: deque[tuple[int, str]] = deque()  # (emit at line number, line body after the time)
    fid_num = 1525260275
    for i in range(count):
        when = start + timedelta(seconds=i)
        now = f"{when:%Y-%m-%d %H:%M:%S}"
        if later and later[0][0] <= i:
            yield f"{now} {later.popleft()[1]}"
            continue
        fid_num += rnd.randrange(1, 9)
        fid = str(fid_num)
        sender = SENDERS[rnd.randrange(len(SENDERS))]
        to = NUMBERS[rnd.randrange(len(NUMBERS))].format(n=rnd.randrange(1000))
        if rnd.random() < 0.125:
            coding, text = 2, _ucs2_hex(UNICODE_TEXTS[i % len(UNICODE_TEXTS)].format(n=i))
            length, excerpt = len(text) // 2, ""
        else:
            coding, text = 0, GSM_TEXTS[rnd.randrange(len(GSM_TEXTS))].format(n=i)
            length, excerpt = len(text), text[:20]
        common = f"[SMSC:vodafone_uk] [SVC:tester] [ACT:] [BINF:] [FID:{fid}]"
        parties = f"[from:{sender}] [to:{to}]"
        yield (f"{now} Sent SMS {common} [META:?smpp_resp?] {parties} [flags:-1:{coding}:-1:-1:31] "
               f"[msg:{length}:{text}] [udh:0:]")
        delivered = rnd.random() < 0.9
        dlr_type, stat, err, dlvrd = (1, "DELIVRD", "000", "001") if delivered else (2, "UNDELIV", "001", "000")
        due = i + 1 + rnd.randrange(1, 4)
        done = f"{when + timedelta(seconds=due - i):%y%m%d%H%M%S}"
        receipt = (f"id:{fid} sub:001 dlvrd:{dlvrd} submit date:{when:%y%m%d%H%M%S} done date:{done} stat:{stat} "
                   f"err:{err} text:{excerpt}")
        later.append((due, f"Receive DLR [SMSC:vodafone_uk] [SVC:tester] [ACT:vf_kannel] [BINF:] [FID:{fid}] "
                           f"[META:?orig_msg?dlr_mask=31&?smpp?dlr_err=%03%00%00&] {parties} "
                           f"[flags:-1:-1:-1:-1:{dlr_type}] [msg:{len(receipt)}:{receipt}] [udh:0:]"))


def twilio_lines(count: int, *, seed: int = 3) -> Iterator[str]:
    """Twilio webhooks as JSON lines: status callbacks (sent, delivered, undelivered, failed) and 10% inbound."""
    rnd = random.Random(seed)
    account = "AC4c122831efef10ac68b5223dccd6f614"
    service = "MG961e38b5146c0b07d078f53dec9b699a"
    for i in range(count):
        sid = f"SM{rnd.getrandbits(128):032x}"
        roll = rnd.random()
        frm, to = f"+1202555{rnd.randrange(10000):04d}", f"+1415555{rnd.randrange(10000):04d}"
        if roll < 0.1:
            body = MO_TEXTS[i % len(MO_TEXTS)].format(n=i)
            yield (f'{{"ToCountry":"US","ToState":"CA","SmsMessageSid":"{sid}","NumMedia":"0","ToCity":"",'
                   f'"FromZip":"20001","SmsSid":"{sid}","FromState":"DC","SmsStatus":"received",'
                   f'"FromCity":"WASHINGTON","Body":"{body}","FromCountry":"US","To":"{frm}",'
                   f'"MessagingServiceSid":"{service}","ToZip":"","NumSegments":"1","MessageSid":"{sid}",'
                   f'"AccountSid":"{account}","From":"{to}","ApiVersion":"2010-04-01"}}')
            continue
        status = "sent" if roll < 0.45 else "delivered" if roll < 0.9 else "undelivered" if roll < 0.97 else "failed"
        extra = ""
        if status in ("undelivered", "failed"):
            extra += f',"ErrorCode":"{("30003", "30005", "30006", "30007", "30008")[i % 5]}"'
        if status in ("delivered", "undelivered"):
            extra += f',"RawDlrDoneDate":"2405141{rnd.randrange(700, 759)}"'
        yield (f'{{"ApiVersion":"2010-04-01","AccountSid":"{account}","From":"{frm}","MessageSid":"{sid}",'
               f'"MessageStatus":"{status}","MessagingServiceSid":"{service}","SmsSid":"{sid}",'
               f'"SmsStatus":"{status}","To":"{to}"{extra}}}')


GENERATORS: dict[str, Callable[[int], Iterator[str]]] = {
    "volt-jsonl": volt_lines,
    "kannel": kannel_lines,
    "twilio": twilio_lines,
    "volt-jsonl-hard": volt_hard_lines,
    "kannel-hard": kannel_hard_lines,
}


def ensure(out_dir: Path, kind: str, lines: int) -> Path:
    """The cached file of `lines` lines of `kind`, generated now if missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kind}-{lines}.v{GENERATOR_VERSION}.log"
    if not path.exists():
        _lines_to_file(path, GENERATORS[kind](lines))
    return path


def ensure_size(out_dir: Path, kind: str, size: int) -> Path:
    """A cached file of at least `size` bytes of `kind` lines (the backlog test's 1 GB file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kind}-{size // 2**20}MiB.v{GENERATOR_VERSION}.log"
    if path.exists():
        return path

    def until_size() -> Iterator[str]:
        written = 0
        for line in GENERATORS[kind](size):  # far more lines than needed: no line is shorter than a byte
            if written >= size:
                return
            written += len(line.encode()) + 1
            yield line

    return _lines_to_file(path, until_size())


if __name__ == "__main__":
    import sys

    for name in GENERATORS:
        n = 20
        sys.stdout.writelines(line + "\n" for line in GENERATORS[name](n))
