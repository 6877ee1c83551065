"""Accounts: registration, sign-in, passwords, roles and invite codes."""
