"""response answer pattern + indexes for the statistics and the submission checks

Revision ID: 0002_response_pattern
Revises: 0001_initial
Create Date: 2026-11-22 01:15:00

`responses.pattern` packs the answers to the six shared 1–5 items into one
integer (Σ v·6^i, 0 = not answered), backfilled from `answers`, so the
statistics aggregate responses with one GROUP BY instead of a pivot join.
"""
from alembic import op
import sqlalchemy as sa

revision = '0002_response_pattern'
down_revision = '0001_initial'
branch_labels = None
depends_on = None

ITEMS = ("overall", "access", "procedure", "staff", "result", "feedback")


def upgrade():
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pattern', sa.Integer(), server_default='0', nullable=False))
    cases = " ".join(f"WHEN '{k}' THEN value * {6 ** i}" for i, k in enumerate(ITEMS))
    keys = ", ".join(f"'{k}'" for k in ITEMS)
    op.execute(
        "UPDATE responses SET pattern = COALESCE((SELECT SUM(CASE item_key " + cases + " ELSE 0 END) "
        "FROM answers WHERE answers.response_id = responses.id AND item_key IN (" + keys + ")"
        " AND value BETWEEN 1 AND 5), 0)"
    )
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.create_index('ix_responses_stats',
                              ['submitted_at', 'unit_id', 'stratum', 'excluded', 'age_group', 'pattern'],
                              unique=False)
        batch_op.create_index('ix_responses_counter_submitted', ['counter_id', 'submitted_at'], unique=False)


def downgrade():
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_index('ix_responses_counter_submitted')
        batch_op.drop_index('ix_responses_stats')
        batch_op.drop_column('pattern')
