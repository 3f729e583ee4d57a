#!/usr/bin/env bash
# Prints one closing line for the busted runs of `make test`: "N passed, N failed".
set -euo pipefail
passed=0 failed=0
for log in "$@"; do
  line=$(grep -Eo '[0-9]+ successes / [0-9]+ failures / [0-9]+ errors' "$log" | tail -n 1) || continue
  read -r s _ _ f _ _ e _ <<<"$line"
  passed=$((passed + s))
  failed=$((failed + f + e))
done
echo "specs: $passed passed, $failed failed"
