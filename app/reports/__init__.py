"""The administrator's overview, targets and the reports sent to the next level up."""
