"""drop instrument_items: never read (the questionnaire is `instruments.definition`)

Revision ID: 0003_drop_instrument_items
Revises: 0002_response_pattern
Create Date: 2026-12-01 10:45:00

Every reader of a questionnaire (forms, imports, exports) uses the stored
JSON definition; the item rows were written and never read.  The downgrade
recreates the table and refills it from the definitions.
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0003_drop_instrument_items'
down_revision = '0002_response_pattern'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_table('instrument_items')


def downgrade():
    items = op.create_table(
        'instrument_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instrument_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=60), nullable=False),
        sa.Column('element', sa.String(length=30), nullable=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('required', sa.Boolean(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('text_vi', sa.Text(), nullable=False),
        sa.Column('text_en', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'],
                                name=op.f('fk_instrument_items_instrument_id_instruments')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_instrument_items')),
        sa.UniqueConstraint('instrument_id', 'key', name=op.f('uq_instrument_items_instrument_id_key')),
    )
    conn = op.get_bind()
    rows = []
    for inst_id, definition in conn.execute(sa.text("SELECT id, definition FROM instruments ORDER BY id")):
        d = json.loads(definition) if isinstance(definition, str) else definition
        for pos, it in enumerate(d.get("items", [])):
            rows.append(dict(instrument_id=inst_id, key=it["key"], element=it.get("element"), kind=it["kind"],
                             required=bool(it.get("required")), position=pos, text_vi=it["text"]["vi"],
                             text_en=it["text"].get("en", "")))
    if rows:
        op.bulk_insert(items, rows)
