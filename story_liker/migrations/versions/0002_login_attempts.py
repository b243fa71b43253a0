"""login attempts, a session flag apart from the stored device, unavailable targets, adaptive limits, warm-up

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:30:00
"""

import sqlalchemy as sa
from alembic import op

import story_liker.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("has_session", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("login_failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("login_attempt_at", story_liker.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("warmup_started_at", story_liker.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "limit_state",
        sa.Column("account", sa.String(length=30), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("factor", sa.Float(), nullable=False),
        sa.Column("changed_at", story_liker.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "kind"),
    )
    with op.batch_alter_table("target", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unavailable", sa.String(length=20), nullable=True))
    for table in ("story", "post"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("skipped", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Until now a stored settings row always held a session.
    op.execute(sa.text("UPDATE account SET has_session = (settings IS NOT NULL)"))


def downgrade() -> None:
    op.drop_table("limit_state")
    for table in ("story", "post"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("skipped")
    with op.batch_alter_table("target", schema=None) as batch_op:
        batch_op.drop_column("unavailable")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("warmup_started_at")
        batch_op.drop_column("login_attempt_at")
        batch_op.drop_column("login_failures")
        batch_op.drop_column("has_session")
