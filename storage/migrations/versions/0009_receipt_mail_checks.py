"""states: CHECK constraints on a receipt's status and an inbound mail's state (stored strings unchanged)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from storage.migrations.checks import add_checks, drop_checks

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The values as they stand in this revision (not imported: a later enum must not rewrite history).
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    'receipts': {'status': ('reading', 'filed', 'needs_review', 'signed')},
    'inbound_mail': {'state': ('spooled', 'filed', 'duplicate', 'quarantined')},
}


def upgrade() -> None:
    add_checks(CHECKS)


def downgrade() -> None:
    drop_checks(CHECKS)
