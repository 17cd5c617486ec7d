"""Who handled a call, in the duty room's words: "8001 接听后转 8010 带班领导", "8003 代接".

One wording for the morning report, the XLSX log and the console, so a transfer reads
the same everywhere. ``roles`` names parties by what they are tonight (the roster's
leader on duty is 带班领导).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway import terms
from gateway.calls.records import PBX


def handled_text(answered_by: str | None, final_party: str | None, transferred_to: str | None,
                 picked_up_by: str | None, roles: Mapping[str, str] | None = None) -> str:
    """The first answer (or pickup), then the transfer if the caller ended with another party."""
    roles = roles or {}

    def named(party: str) -> str:
        return f"{party} {roles[party]}" if party in roles else party

    if answered_by == PBX:
        return terms.AUTO_ANSWERED
    first = picked_up_by or answered_by
    if first is None:
        return ""
    verb = "代接" if picked_up_by else "接听"
    target = final_party or transferred_to
    if transferred_to and target and target != first:
        return f"{named(first)} {verb}后转 {named(target)}"
    return f"{named(first)} 代接" if picked_up_by else named(first)


def leader_roles(leader_number: str | None) -> dict[str, str]:
    """The roster's leader on duty, by number, as a role the report can name."""
    return {leader_number: "带班领导"} if leader_number else {}
