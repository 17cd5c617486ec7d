"""paging requests from the console (立即呼叫 / 停止呼叫), who stopped a page and why

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.base

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('paging_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=True),
    sa.Column('receipt_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('requested_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('handled_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('result_escalation_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'], name=op.f('fk_paging_requests_escalation_id_escalations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['receipt_id'], ['receipts.id'], name=op.f('fk_paging_requests_receipt_id_receipts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_paging_requests'))
    )
    op.create_index(op.f('ix_paging_requests_escalation_id'), 'paging_requests', ['escalation_id'], unique=False)
    op.create_index(op.f('ix_paging_requests_state'), 'paging_requests', ['state'], unique=False)
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stopped_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('stop_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_column('stop_reason')
        batch_op.drop_column('stopped_by')
    op.drop_index(op.f('ix_paging_requests_state'), table_name='paging_requests')
    op.drop_index(op.f('ix_paging_requests_escalation_id'), table_name='paging_requests')
    op.drop_table('paging_requests')
