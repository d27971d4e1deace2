"""Reports a park sends its regulator: gathered from the indicator functions, written as Excel and PDF."""
