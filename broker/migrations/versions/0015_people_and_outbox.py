"""people who sign in to the console: their own accounts, invitations, password resets and
sign-in attempts (each audited), and the email outbox

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_emails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'sent', 'failed', name='emailstatus', native_enum=False, create_constraint=True, length=7), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_outbox_emails_attempts_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_emails'))
    )
    op.create_index('ix_outbox_emails_due', 'outbox_emails', ['status', 'next_attempt_at'], unique=False)
    op.create_table('people',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('email_key', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('password_changed_at', sa.DateTime(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('side', sa.Enum('district', 'startup', 'carrier', name='side', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.Column('company_role', sa.Enum('legal_representative', 'administrator', 'agent', name='companyrole', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=True),
    sa.Column('agent_expires_at', sa.DateTime(), nullable=True),
    sa.Column('status', sa.Enum('active', 'deactivated', name='personstatus', native_enum=False, create_constraint=True, length=11), nullable=False),
    sa.Column('failed_sign_ins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.Column('last_sign_in_at', sa.DateTime(), nullable=True),
    sa.Column('oidc_linked_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('deactivated_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("(company_role = 'agent') = (agent_expires_at IS NOT NULL)", name=op.f('ck_people_agent_has_expiry')),
    sa.CheckConstraint("(side = 'district') = (company_role IS NULL)", name=op.f('ck_people_company_role_for_companies')),
    sa.CheckConstraint("(status = 'deactivated') = (deactivated_at IS NOT NULL)", name=op.f('ck_people_deactivated_has_time')),
    sa.CheckConstraint('failed_sign_ins >= 0', name=op.f('ck_people_failed_sign_ins_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_people_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
    sa.UniqueConstraint('account_id', name=op.f('uq_people_account_id')),
    sa.UniqueConstraint('email_key', name=op.f('uq_people_email_key'))
    )
    op.create_table('invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('side', sa.Enum('district', 'startup', 'carrier', name='side', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.Column('role', sa.Enum('admin', 'staff', 'carrier', 'startup', name='role', native_enum=False, create_constraint=True, length=7), nullable=False),
    sa.Column('startup_id', sa.Integer(), nullable=True),
    sa.Column('carrier_id', sa.Integer(), nullable=True),
    sa.Column('company_role', sa.Enum('legal_representative', 'administrator', 'agent', name='companyrole', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=True),
    sa.Column('agent_expires_at', sa.DateTime(), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(side = 'carrier') = (carrier_id IS NOT NULL)", name=op.f('ck_invitations_carrier_side_has_carrier')),
    sa.CheckConstraint("(side = 'district') = (company_role IS NULL)", name=op.f('ck_invitations_company_role_for_companies')),
    sa.CheckConstraint("(side = 'startup') = (startup_id IS NOT NULL)", name=op.f('ck_invitations_startup_side_has_startup')),
    sa.CheckConstraint('(accepted_at IS NULL) = (person_id IS NULL)', name=op.f('ck_invitations_accepted_has_person')),
    sa.ForeignKeyConstraint(['carrier_id'], ['carriers.id'], name=op.f('fk_invitations_carrier_id_carriers')),
    sa.ForeignKeyConstraint(['invited_by_id'], ['accounts.id'], name=op.f('fk_invitations_invited_by_id_accounts')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_invitations_person_id_people')),
    sa.ForeignKeyConstraint(['startup_id'], ['startups.id'], name=op.f('fk_invitations_startup_id_startups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash'))
    )
    op.create_index(op.f('ix_invitations_carrier_id'), 'invitations', ['carrier_id'], unique=False)
    op.create_index(op.f('ix_invitations_startup_id'), 'invitations', ['startup_id'], unique=False)
    op.create_table('password_resets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_password_resets_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_password_resets_token_hash'))
    )
    op.create_index(op.f('ix_password_resets_person_id'), 'password_resets', ['person_id'], unique=False)
    op.create_table('sign_in_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('email_key', sa.String(length=254), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.Enum('success', 'wrong_password', 'unknown_email', 'locked', 'deactivated', 'agent_expired', name='signinoutcome', native_enum=False, create_constraint=True, length=14), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_sign_in_attempts_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_attempts'))
    )
    op.create_index(op.f('ix_sign_in_attempts_person_id'), 'sign_in_attempts', ['person_id'], unique=False)
    op.create_index(op.f('ix_sign_in_attempts_email_key'), 'sign_in_attempts', ['email_key'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sign_in_attempts_email_key'), table_name='sign_in_attempts')
    op.drop_index(op.f('ix_sign_in_attempts_person_id'), table_name='sign_in_attempts')
    op.drop_table('sign_in_attempts')
    op.drop_index(op.f('ix_password_resets_person_id'), table_name='password_resets')
    op.drop_table('password_resets')
    op.drop_index(op.f('ix_invitations_startup_id'), table_name='invitations')
    op.drop_index(op.f('ix_invitations_carrier_id'), table_name='invitations')
    op.drop_table('invitations')
    op.drop_table('people')
    op.drop_index('ix_outbox_emails_due', table_name='outbox_emails')
    op.drop_table('outbox_emails')
