"""a year of history: indexes for the reads that must not grow with it (the newest likes, a window of them, a
target's newest, the last success of a command) and for pruning what expired (action rows by age)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 12:00:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEXES = [
    # a window of likes: report counts them from the index alone (who, sent or skipped or found)
    ("story", "ix_story_account_liked", ["account", "liked_at", "target_user_pk", "skipped", "found"]),
    ("story", "ix_story_account_target_liked", ["account", "target_user_pk", "liked_at"]),
    ("post", "ix_post_account_liked", ["account", "liked_at", "target_user_pk", "skipped", "found"]),
    ("post", "ix_post_account_target_liked", ["account", "target_user_pk", "liked_at"]),
    ("action", "ix_action_at", ["at"]),
    ("run", "ix_run_account_command_finished", ["account", "command", "finished_at"]),
]


def upgrade() -> None:
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for table, name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
