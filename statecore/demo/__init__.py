"""A demo fleet that shows recovery happening in real time, for the README's first command."""
