"""Spot checks of the subordinate units' duty lines (值班抽查) and the 情况通报.

``units`` imports the list of units, ``plan`` draws the check times, ``check`` is the pure
state machine that turns one call's AMI events into a result, ``runner`` places the calls
and stores what happened, ``report`` writes the 情况通报, ``commands`` is the CLI.
"""
