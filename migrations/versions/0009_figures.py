"""response cells kept by triggers, unit change marks, the stored staff figures (issue 14)

Revision ID: 0009_figures
Revises: 0008_cases
Create Date: 2026-12-01 15:40:00

`response_cells` holds the count of responses per (unit, counter, procedure
field, excluded, under 18, answer pattern, local half-month) cell and
`unit_marks` a change counter per unit; triggers on `responses` keep both
exact in the transaction of every write (the trigger text lives once, in
survey_app/services/aggregates.py).  `figure_store` is the persisted copy of
the computed staff figures.  The upgrade counts the existing responses.
Four partial indexes of `responses` serve the staff pages' lists and counts
of a period (comments, flagged or excluded, typed, paper batches).
"""
from alembic import op
import sqlalchemy as sa

revision = '0009_figures'
down_revision = '0008_cases'
branch_labels = None
depends_on = None

PARTIAL = (  # as models.RESPONSE_PARTIAL_INDEXES
    ("commented", "comment IS NOT NULL AND comment <> ''"),
    ("flagged", "flags <> '' OR excluded IS true"),
    ("typed", "channel IN ('paper', 'phone')"),
    ("batched", "paper_batch IS NOT NULL"),
)


def upgrade():
    from survey_app.services.aggregates import install_sql, rebuild

    op.create_table(
        'response_cells',
        sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('counter_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('stratum', sa.String(length=60), nullable=False),
        sa.Column('excluded', sa.Boolean(), nullable=False),
        sa.Column('under18', sa.Boolean(), nullable=False),
        sa.Column('pattern', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('bucket', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('unit_id', 'counter_id', 'stratum', 'excluded', 'under18', 'pattern', 'bucket'),
    )
    op.create_table(
        'unit_marks',
        sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('unit_id'),
    )
    op.create_table(
        'figure_store',
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('stamp', sa.String(length=80), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recipe', sa.LargeBinary(), nullable=True),
        sa.Column('value', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    for name, where in PARTIAL:
        op.create_index(f'ix_responses_{name}', 'responses', ['submitted_at', 'unit_id'], unique=False,
                        postgresql_where=sa.text(where), sqlite_where=sa.text(where))
    conn = op.get_bind()
    for stmt in install_sql(conn.dialect.name):
        conn.exec_driver_sql(stmt)
    rebuild(conn)


def downgrade():
    from survey_app.services.aggregates import drop_sql

    conn = op.get_bind()
    for stmt in drop_sql(conn.dialect.name):
        conn.exec_driver_sql(stmt)
    for name, _ in PARTIAL:
        op.drop_index(f'ix_responses_{name}', table_name='responses')
    op.drop_table('figure_store')
    op.drop_table('unit_marks')
    op.drop_table('response_cells')
