"""Reports over a checked IR: the summary table and its JSON form."""
