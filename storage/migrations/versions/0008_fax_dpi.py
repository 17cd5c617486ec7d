"""receipts: the fax server's resolution in dpi

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpi_x', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('dpi_y', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_column('dpi_y')
        batch_op.drop_column('dpi_x')
