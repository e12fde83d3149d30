"""Known upstream issues (a reviewed data file) and which cells they explain."""
