"""What three or more layers of the service share (the store, the features, the commands): small, dependency-free
definitions, so app/'s root holds only entry points and wiring."""
