"""Every absl flag of the project, grouped by program, and the programs' shared set-up.

Import a group as `from flags import train_flags`; never `import flags.x`,
which would shadow absl's own `flags` module in the importing file. Flags that
several programs share are defined once, in `common_flags`; `cli` is what
every program's `main` does with them (parse, report a user error in one
line, set TensorFlow's environment). Library modules under `tf_raw/` never
import this package: programs turn the parsed flags into a frozen config once
(see `tf_raw/config.py`) and pass it down.
"""
