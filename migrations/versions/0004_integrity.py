"""integrity: four-eyes exclusion requests; who typed a paper/phone response and its batch

Revision ID: 0004_integrity
Revises: 0003_drop_instrument_items
Create Date: 2026-12-01 12:20:00

`exclusion_requests` holds every request to exclude (or re-include) a
response and its decision; only an approved request changes
`responses.excluded`, the state the statistics read.  `responses` gains
`entered_by_user_id` (the staff user who typed a paper or phone
questionnaire) and `paper_batch` (the label of its paper batch).
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_integrity'
down_revision = '0003_drop_instrument_items'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entered_by_user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('paper_batch', sa.String(length=80), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_responses_entered_by_user_id_users'), 'users',
                                    ['entered_by_user_id'], ['id'])
    op.create_table(
        'exclusion_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('response_id', sa.Uuid(), nullable=False),
        sa.Column('action', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decision_note', sa.Text(), nullable=True),
        sa.CheckConstraint("action IN ('exclude','include')", name=op.f('ck_exclusion_requests_action')),
        sa.CheckConstraint("status IN ('pending','approved','rejected','withdrawn')",
                           name=op.f('ck_exclusion_requests_status')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'],
                                name=op.f('fk_exclusion_requests_decided_by_id_users')),
        sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'],
                                name=op.f('fk_exclusion_requests_requested_by_id_users')),
        sa.ForeignKeyConstraint(['response_id'], ['responses.id'],
                                name=op.f('fk_exclusion_requests_response_id_responses'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_exclusion_requests')),
    )
    with op.batch_alter_table('exclusion_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exclusion_requests_response_id'), ['response_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exclusion_requests_status'), ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('exclusion_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exclusion_requests_status'))
        batch_op.drop_index(batch_op.f('ix_exclusion_requests_response_id'))
    op.drop_table('exclusion_requests')
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_responses_entered_by_user_id_users'), type_='foreignkey')
        batch_op.drop_column('paper_batch')
        batch_op.drop_column('entered_by_user_id')
