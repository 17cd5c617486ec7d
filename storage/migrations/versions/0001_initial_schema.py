"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.base

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('linkedid', sa.String(length=100), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=False),
    sa.Column('caller_name', sa.String(length=200), nullable=True),
    sa.Column('caller_unit', sa.String(length=200), nullable=True),
    sa.Column('caller_withheld', sa.Boolean(), nullable=False),
    sa.Column('dialed', sa.String(length=64), nullable=True),
    sa.Column('arrived_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ringing_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ring_seconds', sa.Float(), nullable=True),
    sa.Column('rings', sa.Integer(), nullable=True),
    sa.Column('rule_met', sa.Boolean(), nullable=True),
    sa.Column('answered_by', sa.String(length=64), nullable=True),
    sa.Column('talk_seconds', sa.Float(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('hangup_cause', sa.Integer(), nullable=True),
    sa.Column('called_back_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('called_back_by', sa.String(length=64), nullable=True),
    sa.Column('callback_connected', sa.Boolean(), nullable=True),
    sa.Column('closed_by_call_id', sa.Integer(), nullable=True),
    sa.Column('time_source', sa.String(length=10), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['closed_by_call_id'], ['calls.id'], name=op.f('fk_calls_closed_by_call_id_calls'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls')),
    sa.UniqueConstraint('linkedid', name=op.f('uq_calls_linkedid'))
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calls_arrived_at'), ['arrived_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_caller'), ['caller'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_outcome'), ['outcome'], unique=False)

    op.create_table('escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opened_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('shift_key', sa.String(length=30), nullable=True),
    sa.Column('receipt_ids', sa.JSON(), nullable=False),
    sa.Column('chain', sa.JSON(), nullable=False),
    sa.Column('acknowledged_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=100), nullable=True),
    sa.Column('acknowledged_number', sa.String(length=50), nullable=True),
    sa.Column('deadline_met', sa.Boolean(), nullable=True),
    sa.Column('closed_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('not_before', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalations'))
    )
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalations_opened_at'), ['opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalations_state'), ['state'], unique=False)

    op.create_table('inbound_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('spool_path', sa.String(length=500), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('message_id', sa.String(length=500), nullable=True),
    sa.Column('mail_from', sa.String(length=500), nullable=False),
    sa.Column('rcpt_to', sa.String(length=1000), nullable=False),
    sa.Column('peer', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('attachment_sha256', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_mail'))
    )
    with op.batch_alter_table('inbound_mail', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_mail_attachment_sha256'), ['attachment_sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_mail_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_mail_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_mail_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_mail_state'), ['state'], unique=False)

    op.create_table('listener_gaps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lost_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reconnected_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_listener_gaps')),
    sa.UniqueConstraint('lost_at', name=op.f('uq_listener_gaps_lost_at'))
    )
    op.create_table('outbound_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('created_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('receipt_ids', sa.JSON(), nullable=False),
    sa.Column('shift_key', sa.String(length=30), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_mail'))
    )
    with op.batch_alter_table('outbound_mail', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_mail_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_mail_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_mail_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_mail_state'), ['state'], unique=False)

    op.create_table('phonebook',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('unit', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phonebook')),
    sa.UniqueConstraint('number', name=op.f('uq_phonebook_number'))
    )
    op.create_table('roster_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('duty_date', sa.Date(), nullable=False),
    sa.Column('shift', sa.String(length=30), nullable=False),
    sa.Column('leader_name', sa.String(length=100), nullable=False),
    sa.Column('leader_number', sa.String(length=50), nullable=False),
    sa.Column('officers', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('imported_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_entries')),
    sa.UniqueConstraint('duty_date', 'shift', name=op.f('uq_roster_entries_duty_date'))
    )
    with op.batch_alter_table('roster_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roster_entries_duty_date'), ['duty_date'], unique=False)

    op.create_table('page_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('try_no', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('number', sa.String(length=50), nullable=False),
    sa.Column('action_id', sa.String(length=80), nullable=False),
    sa.Column('planned_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('receipt_ids', sa.JSON(), nullable=False),
    sa.Column('sent_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('result', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'], name=op.f('fk_page_attempts_escalation_id_escalations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_page_attempts')),
    sa.UniqueConstraint('action_id', name=op.f('uq_page_attempts_action_id'))
    )
    with op.batch_alter_table('page_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_page_attempts_escalation_id'), ['escalation_id'], unique=False)

    op.create_table('receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=True),
    sa.Column('received_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_time_source', sa.String(length=20), nullable=False),
    sa.Column('station', sa.String(length=200), nullable=True),
    sa.Column('sender_number', sa.String(length=50), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('original_path', sa.String(length=500), nullable=True),
    sa.Column('original_sha256', sa.String(length=64), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    sa.Column('copy_no', sa.String(length=50), nullable=True),
    sa.Column('doc_number', sa.String(length=200), nullable=True),
    sa.Column('issuer', sa.String(length=300), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('recipients', sa.Text(), nullable=True),
    sa.Column('doc_date', sa.String(length=50), nullable=True),
    sa.Column('sender', sa.String(length=300), nullable=True),
    sa.Column('urgency', sa.String(length=20), nullable=True),
    sa.Column('is_urgent', sa.Boolean(), nullable=False),
    sa.Column('possibly_urgent', sa.Boolean(), nullable=False),
    sa.Column('urgency_reasons', sa.JSON(), nullable=False),
    sa.Column('urgency_decided_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('classification', sa.String(length=20), nullable=True),
    sa.Column('secrecy_period', sa.String(length=50), nullable=True),
    sa.Column('ocr_engine', sa.String(length=50), nullable=True),
    sa.Column('ocr_confidence', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('review_reasons', sa.JSON(), nullable=False),
    sa.Column('filed_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('signed_by', sa.String(length=100), nullable=True),
    sa.Column('signed_at', storage.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['mail_id'], ['inbound_mail.id'], name=op.f('fk_receipts_mail_id_inbound_mail')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipts')),
    sa.UniqueConstraint('mail_id', name=op.f('uq_receipts_mail_id')),
    sa.UniqueConstraint('year', 'seq', name=op.f('uq_receipts_year'))
    )
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipts_is_urgent'), ['is_urgent'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipts_original_sha256'), ['original_sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipts_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipts_status'), ['status'], unique=False)

    op.create_table('report_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shift_key', sa.String(length=30), nullable=False),
    sa.Column('made_at', storage.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('directory', sa.String(length=500), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['mail_id'], ['outbound_mail.id'], name=op.f('fk_report_runs_mail_id_outbound_mail')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_runs')),
    sa.UniqueConstraint('shift_key', name=op.f('uq_report_runs_shift_key'))
    )
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_runs_made_at'), ['made_at'], unique=False)

    op.create_table('receipt_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('receipt_id', sa.Integer(), nullable=False),
    sa.Column('page_no', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('engine', sa.String(length=50), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['receipt_id'], ['receipts.id'], name=op.f('fk_receipt_pages_receipt_id_receipts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt_pages')),
    sa.UniqueConstraint('receipt_id', 'page_no', name=op.f('uq_receipt_pages_receipt_id'))
    )
    with op.batch_alter_table('receipt_pages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_pages_receipt_id'), ['receipt_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('receipt_pages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_pages_receipt_id'))

    op.drop_table('receipt_pages')
    with op.batch_alter_table('report_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_runs_made_at'))

    op.drop_table('report_runs')
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipts_status'))
        batch_op.drop_index(batch_op.f('ix_receipts_received_at'))
        batch_op.drop_index(batch_op.f('ix_receipts_original_sha256'))
        batch_op.drop_index(batch_op.f('ix_receipts_is_urgent'))

    op.drop_table('receipts')
    with op.batch_alter_table('page_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_page_attempts_escalation_id'))

    op.drop_table('page_attempts')
    with op.batch_alter_table('roster_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roster_entries_duty_date'))

    op.drop_table('roster_entries')
    op.drop_table('phonebook')
    with op.batch_alter_table('outbound_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_mail_state'))
        batch_op.drop_index(batch_op.f('ix_outbound_mail_kind'))
        batch_op.drop_index(batch_op.f('ix_outbound_mail_due_at'))
        batch_op.drop_index(batch_op.f('ix_outbound_mail_created_at'))

    op.drop_table('outbound_mail')
    op.drop_table('listener_gaps')
    with op.batch_alter_table('inbound_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_mail_state'))
        batch_op.drop_index(batch_op.f('ix_inbound_mail_sha256'))
        batch_op.drop_index(batch_op.f('ix_inbound_mail_received_at'))
        batch_op.drop_index(batch_op.f('ix_inbound_mail_message_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_mail_attachment_sha256'))

    op.drop_table('inbound_mail')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalations_state'))
        batch_op.drop_index(batch_op.f('ix_escalations_opened_at'))

    op.drop_table('escalations')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_outcome'))
        batch_op.drop_index(batch_op.f('ix_calls_caller'))
        batch_op.drop_index(batch_op.f('ix_calls_arrived_at'))

    op.drop_table('calls')
