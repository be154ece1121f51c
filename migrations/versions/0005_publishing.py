"""publishing: period snapshots (frozen, numbered versions of a closed period) and unit approvals

Revision ID: 0005_publishing
Revises: 0004_integrity
Create Date: 2026-12-01 12:20:00

`period_snapshots` holds each version of a closed report period for a
subtree: the full results table and its meta as JSON and the sha256 of the
inputs that produced it.  `unit_approvals` holds each unit's figures in a
version on their way to the public page (draft, submitted, changes
requested, accepted, published).  See services/publishing.py.
"""
import sqlalchemy as sa
from alembic import op

revision = '0005_publishing'
down_revision = '0004_integrity'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'period_snapshots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=40), nullable=False),
        sa.Column('scope', sa.String(length=40), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('opened_by', sa.String(length=80), nullable=True),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_by', sa.String(length=80), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('method_version', sa.String(length=60), nullable=True),
        sa.Column('data_cutoff', sa.String(length=40), nullable=True),
        sa.Column('input_hash', sa.String(length=64), nullable=True),
        sa.Column('meta', sa.JSON(), nullable=True),
        sa.Column('table', sa.JSON(), nullable=True),
        sa.CheckConstraint("state IN ('open','closed')", name=op.f('ck_period_snapshots_state')),
        sa.CheckConstraint('version >= 1', name=op.f('ck_period_snapshots_version_positive')),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_period_snapshots_unit_id_units')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_period_snapshots')),
        sa.UniqueConstraint('period', 'scope', 'version', name=op.f('uq_period_snapshots_period_scope_version')),
    )
    op.create_table(
        'unit_approvals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('snapshot_id', sa.Integer(), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reflection', sa.Text(), nullable=True),
        sa.Column('submitted_by', sa.String(length=80), nullable=True),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('acceptances', sa.JSON(), nullable=True),
        sa.Column('review_note', sa.Text(), nullable=True),
        sa.Column('reviewed_by', sa.String(length=80), nullable=True),
        sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('published_by', sa.String(length=80), nullable=True),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('draft','submitted','changes_requested','accepted','published')",
                           name=op.f('ck_unit_approvals_status')),
        sa.ForeignKeyConstraint(['snapshot_id'], ['period_snapshots.id'],
                                name=op.f('fk_unit_approvals_snapshot_id_period_snapshots'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_unit_approvals_unit_id_units')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_unit_approvals')),
        sa.UniqueConstraint('snapshot_id', 'unit_id', name=op.f('uq_unit_approvals_snapshot_id_unit_id')),
    )
    with op.batch_alter_table('unit_approvals', schema=None) as batch_op:
        batch_op.create_index('ix_unit_approvals_status', ['status', 'published_at'], unique=False)


def downgrade():
    with op.batch_alter_table('unit_approvals', schema=None) as batch_op:
        batch_op.drop_index('ix_unit_approvals_status')
    op.drop_table('unit_approvals')
    op.drop_table('period_snapshots')
