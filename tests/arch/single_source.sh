#!/usr/bin/env bash
# The contract is defined once (docs/architecture.md): checks over the source tree that CMake runs
# as a test. Exits 1 naming every violation.
#  - no CMake file reaches into host/src, and no #include outside host/ names a private host header;
#  - the configuration's text values (part, platform) are written only in arch/include/sat/arch/config.hpp
#    among the sources, scripts and tool configs (docs may quote them);
#  - the generator's outputs are build outputs, never committed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2
fail=0
say() { echo "single-source: $*"; fail=1; }

files=$(git ls-files 2>/dev/null || find . -type f -not -path './build*' | sed 's|^\./||')

hits=$(grep -n 'host/src' $(echo "$files" | grep -E '(^|/)CMakeLists\.txt$|\.cmake$') 2>/dev/null)
[[ -n $hits ]] && say "CMake files that reach into host/src:"$'\n'"$hits"

private='#include *"(compiler|cpu|layers|accelerator|registry)/|#include *"backend_factories\.hpp"|#include *"backend_table\.hpp"'
hits=$(grep -nE "$private" $(echo "$files" | grep -E '\.(c|cc|cpp|h|hpp|cu|cuh)$' | grep -v '^host/') 2>/dev/null)
[[ -n $hits ]] && say "#include of a private host header outside host/:"$'\n'"$hits"

for value in $(grep -oE 'k(Part|DefaultPlatform) = "[^"]+"' arch/include/sat/arch/config.hpp | sed -E 's/.*"([^"]+)"/\1/'); do
  hits=$(grep -lF "$value" $(echo "$files" | grep -vE '\.md$|^arch/include/sat/arch/config\.hpp$') 2>/dev/null)
  [[ -n $hits ]] && say "'$value' (arch/include/sat/arch/config.hpp) written again in:"$'\n'"$hits"
done

hits=$(echo "$files" | grep -E '(^|/)(sat_config_pkg\.sv|sat_arch\.json|sat_arch\.cmake|sat_arch\.tcl)$')
[[ -n $hits ]] && say "generated contract files are committed:"$'\n'"$hits"

[[ $fail == 0 ]] && echo "single-source: ok"
exit $fail
