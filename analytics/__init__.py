"""Analytics: indicators as pure functions, the targets they are judged against, and the jobs
that feed them from stored readings."""
