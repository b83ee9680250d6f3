"""What this CPU offers the heavy kernels: AVX-512, bfloat16, AMX.

    cpu_features.flags()            {"avx512f": True, "avx512_bf16": ..., ...}
    cpu_features.native_bfloat16()  True, False, or None (cannot tell)

Read from /proc/cpuinfo (Linux); elsewhere nothing is known and both say so.
`python -m tf_raw.train --precision=mixed_bfloat16` uses `native_bfloat16`
for its notice, the benchmark prints `flags()` with its table. No TensorFlow
here: oneDNN picks its kernels from the same CPU flags at run time.
"""

import re

# The flags that decide which oneDNN kernels run, as /proc/cpuinfo names them.
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
            "amx_tile")
# Either gives bfloat16 dot products in hardware (AVX512_BF16: Cooper Lake,
# Zen 4 and later; AMX: Sapphire Rapids and later). Without them oneDNN
# emulates bfloat16 with float32 instructions: correct, often slower.
BFLOAT16_FEATURES = ("avx512_bf16", "amx_bf16")


def flags(cpuinfo_path="/proc/cpuinfo"):
  """{feature: bool} for each of FEATURES, or {} when the CPU cannot be read."""
  try:
    with open(cpuinfo_path, encoding="utf-8", errors="replace") as cpuinfo:
      match = re.search(r"^flags\s*:(.*)$", cpuinfo.read(), re.MULTILINE)
  except OSError:
    return {}
  if not match:
    return {}
  present = set(match.group(1).split())
  return {name: name in present for name in FEATURES}


def native_bfloat16(cpuinfo_path="/proc/cpuinfo"):
  """True with AVX512_BF16 or AMX, False without, None when unknown."""
  features = flags(cpuinfo_path)
  if not features:
    return None
  return any(features[name] for name in BFLOAT16_FEATURES)


def describe(features):
  """One line, e.g. "AVX-512 yes, AVX512_BF16 yes, AMX no"."""
  if not features:
    return "CPU features unknown (no /proc/cpuinfo)"
  def yes(name):
    return "yes" if features.get(name) else "no"
  return (f"AVX-512 {yes('avx512f')}, AVX512_BF16 {yes('avx512_bf16')}, "
          f"AMX {yes('amx_bf16')}")
