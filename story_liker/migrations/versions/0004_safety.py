"""safety round: the unattended login bound, one account row per Instagram user, target failures and renames,
the item of each like sent (an unconfirmed like is never sent again)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 09:00:00
"""

import sqlalchemy as sa
from alembic import op

import story_liker.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auto_login_at", story_liker.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("following_failed_at", story_liker.models.UTCDateTime(timezone=True), nullable=True)
        )
    # One Instagram user belongs to one account row. Rows that already share a user pk (a session imported under a
    # second name) cannot tell which one is right: both forget it, and the next run that saves the session learns it
    # again, or is refused when another row holds it.
    op.execute(
        sa.text(
            "UPDATE account SET user_pk = NULL WHERE user_pk IN "
            "(SELECT user_pk FROM account WHERE user_pk IS NOT NULL GROUP BY user_pk HAVING COUNT(*) > 1)"
        )
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index("ux_account_user_pk", ["user_pk"], unique=True)
    with op.batch_alter_table("target", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("failing", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("current_name", sa.String(length=30), nullable=True))
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item_pk", sa.String(length=40), nullable=True))
    for table in ("story", "post"):  # found already liked: kept for bookkeeping, no like this tool sent
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("found", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    for table in ("story", "post"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("found")
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.drop_column("item_pk")
    with op.batch_alter_table("target", schema=None) as batch_op:
        batch_op.drop_column("current_name")
        batch_op.drop_column("failing")
        batch_op.drop_column("failures")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index("ux_account_user_pk")
        batch_op.drop_column("following_failed_at")
        batch_op.drop_column("auto_login_at")
