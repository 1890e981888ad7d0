"""Library of the executable book (see README.md)."""
