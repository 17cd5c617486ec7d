"""states: CHECK constraints on the state columns (the StrEnums' values; stored strings unchanged)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from storage.migrations.checks import add_checks, drop_checks

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# The values as they stand in this revision (not imported: a later enum must not rewrite history).
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    'calls': {
        'direction': ('in', 'out'),
        'outcome': ('answered', 'missed_abandoned', 'missed_no_answer', 'missed_busy', 'failed', 'fax', 'unknown'),
    },
    'escalations': {'state': ('open', 'acknowledged', 'exhausted', 'stopped', 'cancelled')},
    'page_attempts': {'result': ('planned', 'sent', 'answered', 'acknowledged', 'not_acknowledged',
                                 'no_answer', 'busy', 'failed', 'stopped')},
    'outbound_mail': {'state': ('pending', 'sent', 'failed')},
}


def upgrade() -> None:
    add_checks(CHECKS)


def downgrade() -> None:
    drop_checks(CHECKS)
