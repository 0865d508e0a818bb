"""Status classes: pending, sent or final, so a late event never downgrades a final status."""

from __future__ import annotations

from functools import lru_cache

_PENDING = (
    "queued accepted scheduled sending enroute buffered dispatched submitted pending receiving created "
    "processing waiting new sms_buffered text_queued text_pending in_progress "
    # SMPP errors that gateways retry (Kannel: 0x08/0x14/0x58/0x64; Jasmin's submit_error_retrial defaults)
    "esme_rthrottled esme_rsyserr esme_rmsgqful esme_rx_t_appn"
)
_SENT = (
    "sent esme_rok acceptd accepted_by_smsc smsc_accepted delivered_to_operator delivered_to_smsc "
    "sent_to_carrier delivered_to_carrier "
    # CDYNE's DeliveredToCarrier and the MM4/MM7 intermediate states (Tychron MMS receipts), lower-cased as sent
    "deliveredtocarrier forwarded deferred"
)
_FINAL = (
    "delivered undelivered undeliverable failed delivery_failed expired rejected deleted received read "
    "canceled cancelled unknown delivrd undeliv rejectd partially_delivered delivery_unconfirmed "
    "sending_failed webhook_delivered aborted blocked successful success sms_success sms_failure sms_optout "
    "opted_out optout spam invalid unreachable carrier_unreachable carrier_blocked ttl_expired skipped "
    "text_delivered text_successful text_blocked text_invalid text_unreachable text_carrier_unreachable "
    "text_spam text_ttl_expired text_unknown text_opted_out text_invalid_message text_carrier_blocked "
    "text_max_price_exceeded invalid_message max_price_exceeded no_quota_left_on_account error "
    "delivered_to_handset "
    # RingCentral A2P, CDYNE receipt codes and MM4/MM7 final states, lower-cased as the provider writes them
    "deliveryfailed sendingfailed deliveredtodevice undelivordeleted senderexceededcarrierthrottle "
    "recipientexceededcarrierthrottle senderandrecipentexceededcarrierthrottle "
    "invalidmessageformatortextmsgcontentsizeexceeded badaddress invalidrouting carriererrorunknown "
    "retrieved indeterminate unrecognised unrecognized"
)
_STATUS_CLASSES: dict[str, str] = {
    **dict.fromkeys(_PENDING.split(), "pending"),
    **dict.fromkeys(_SENT.split(), "sent"),
    **dict.fromkeys(_FINAL.split(), "final"),
}
_STATUS_RANK = {"pending": 0, "sent": 1, "final": 2}


def status_class(status: str) -> str:
    """Class of a status word from any provider: "pending" < "sent" < "final", or "unknown" if not recognised.

    Case, surrounding blanks, "-"/" " vs "_" and a "Class." or "_SMS." prefix are ignored. Decisions:
    "accepted" (a provider took the request) is pending, SMPP "acceptd" / "esme_rok" (the SMSC took it) are
    sent; the status *word* "unknown" (SMPP UNKNOWN, Sinch/Pinpoint UNKNOWN) is final, because a gateway
    reports it as a terminal failure (Kannel DLR type 2); "successful"/"success" (Pinpoint) are final.
    ESME error names are final, except the ones gateways retry (ESME_RTHROTTLED, ESME_RSYSERR, ESME_RMSGQFUL,
    ESME_RX_T_APPN), which are pending: Jasmin logs them with ``[retry:True]`` and the same message may still
    be accepted, which a "final" class would then wrongly block. Unrecognised words are "unknown" — callers
    must not treat those as final.
    """
    if not isinstance(status, str):
        return "unknown"
    return _status_class(status)


@lru_cache(maxsize=2048)
def _status_class(status: str) -> str:
    s = status.strip().lower().replace("-", "_").replace(" ", "_")
    if "." in s:
        s = s.rsplit(".", 1)[1]
    if "/" in s:
        s = s.rsplit("/", 1)[1]
    s = s.strip("_")
    cls = _STATUS_CLASSES.get(s)
    if cls is not None:
        return cls
    if s.startswith("esme_r"):
        return "final"
    return "unknown"


def is_final(status: str) -> bool:
    """True when the status is terminal (see :func:`status_class`); unrecognised words are not final."""
    return status_class(status) == "final"
