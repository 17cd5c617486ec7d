"""call parties: final party, transfer, pickup, each party's talk

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_COLUMNS = ("final_party", "transferred_by", "transferred_to", "picked_up_by")


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('talks', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('talks')
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
