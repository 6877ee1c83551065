"""First run: the owner account and the shop's basic settings."""
