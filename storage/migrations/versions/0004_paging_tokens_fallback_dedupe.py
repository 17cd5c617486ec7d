"""paging: unguessable page tokens, fallback time, idempotent notices

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fallback_at', storage.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('page_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('page_token', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_page_attempts_page_token'), ['page_token'])
    with op.batch_alter_table('outbound_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dedupe_key', sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_outbound_mail_dedupe_key'), ['dedupe_key'])


def downgrade() -> None:
    with op.batch_alter_table('outbound_mail', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_outbound_mail_dedupe_key'), type_='unique')
        batch_op.drop_column('dedupe_key')
    with op.batch_alter_table('page_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_page_attempts_page_token'), type_='unique')
        batch_op.drop_column('page_token')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_column('fallback_at')
