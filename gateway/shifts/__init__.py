"""Shifts: the duty calendar (which shift is on when) and the roster (who is on duty in it)."""
