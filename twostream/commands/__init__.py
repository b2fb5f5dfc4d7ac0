"""Subcommands of the `twostream` command (see `twostream.console`)."""
