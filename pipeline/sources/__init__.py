"""One module per source; each turns its native files into rows of the boxes table."""
