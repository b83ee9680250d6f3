"""Every absl flag of the project, grouped by program.

Import a group as `from flags import train_flags`; never `import flags.x`,
which would shadow absl's own `flags` module in the importing file.
Library modules under `tf_raw/` never import this package: programs turn the
parsed flags into a frozen config once (see `tf_raw/config.py`) and pass it down.
"""
