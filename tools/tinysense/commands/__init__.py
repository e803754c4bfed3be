"""Subcommands of the `tinysense` CLI, one module each.

A command module defines `NAME` (the subcommand), `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int` (the exit status). The CLI finds every module in this package by itself.
"""
