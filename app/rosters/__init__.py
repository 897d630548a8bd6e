"""Class rosters from the LMS (NRPS) and from launches."""
