"""languages and time zones: each person's language and time zone (both optional)

Revision ID: 0015
Revises: 0009
Create Date: 2026-12-10 09:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
        batch.add_column(sa.Column("time_zone", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("time_zone")
        batch.drop_column("language")
