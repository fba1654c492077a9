"""What Hume billed: each run's metered seconds read from Hume's runs API, usage grouped and priced, and the
check for runs no job of ours owns."""
