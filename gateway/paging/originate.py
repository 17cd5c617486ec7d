"""The AMI ``Originate`` a page call is placed with, into the dialplan's ``[paging] ack``.

What the dialplan needs rides in channel variables: the attempt's unguessable ``PAGE_ID``,
the ActionID as ``PAGE_ATTEMPT``, the number, the page's text for the local-AGI mode, and
``PAGE_AGI``, the FastAGI the call runs on answer (``dialplan/README.md``).
"""

from __future__ import annotations

from gateway.config import Config
from gateway.paging.agi import page_text_variables
from gateway.paging.escalation import PlaceCall


def agi_url(config: Config, port: int | None = None) -> str:
    """What the dialplan should run on answer; empty for the PBX's local script."""
    paging = config.paging
    if paging.agi_url == "local":
        return ""
    return paging.agi_url or f"agi://{paging.agi_host}:{port or paging.agi_port}/page"


def originate_fields(config: Config, call: PlaceCall, text: str, agi_port: int | None = None,
                     token: str = "") -> dict[str, str | list[str]]:
    """The Originate into ``[paging] ack``. ``PAGE_ID`` is the attempt's unguessable token
    (the ActionID stays between the gateway and AMI); the text rides along base64-encoded
    (commas split ``Variable`` values on AMI) for the local-AGI mode, which has nothing else
    to speak from; the FastAGI server never uses it."""
    paging = config.paging
    variables = [
        f"PAGE_ID={token or call.key}",
        f"PAGE_ATTEMPT={call.key}",
        f"PAGE_ESCALATION={call.escalation_id}",
        f"PAGE_NUMBER={call.number}",
        *page_text_variables(text),
    ]
    url = agi_url(config, agi_port)
    if url:
        variables.append(f"PAGE_AGI={url}")
    return {
        "Channel": paging.channel.format(number=call.number),
        "Context": paging.context,
        "Exten": paging.exten,
        "Priority": "1",
        "Async": "true",
        "Timeout": str(int(paging.ring_timeout_seconds * 1000)),
        "CallerID": paging.caller_id,
        "Variable": variables,
    }
