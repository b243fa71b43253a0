"""notifications: the account's last notified health and the messages not yet delivered everywhere

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import story_liker.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_state",
        sa.Column("account", sa.String(length=30), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_key", sa.String(length=40), nullable=True),
        sa.Column("changed_at", story_liker.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("digest_at", story_liker.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account"),
    )
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=30), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", story_liker.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_to", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", story_liker.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", story_liker.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_account_done", ["account", "done_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_account_done")
    op.drop_table("notification")
    op.drop_table("notify_state")
