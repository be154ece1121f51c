"""background jobs (services.jobs)

Revision ID: 0007_jobs
Revises: 0006_api
Create Date: 2026-12-01 15:20:00

One table of background work: figures to recompute, webhooks and e-mails to
deliver, large exports (issues 12 and 14).
RULE (COMMON.md): down_revision is the head on main when this lands.

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007_jobs'
down_revision = '0006_api'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_due', ['status', 'run_after'], unique=False)
        batch_op.create_index('ix_jobs_kind_key', ['kind', 'key'], unique=False)


def downgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_kind_key')
        batch_op.drop_index('ix_jobs_due')
    op.drop_table('jobs')
