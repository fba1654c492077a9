"""Live sessions: browsers measure through us in real time (a relay to Hume's v1 realtime API), each
session stored as a job as it runs."""
