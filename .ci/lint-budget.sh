#!/usr/bin/env bash
# The lint exceptions can only fall. Every allow/expect of a workspace lint
# (root Cargo.toml) carries `// lint-exception: why` on its line; their number
# must equal .ci/lint-budget.txt. More fails; fewer fails too, asking to lower
# the budget (a ratchet). The one allow that is not an exception: test and
# bench crate roots may unwrap, expect and have unreachable `pub` helpers.
set -euo pipefail
cd "$(dirname "$0")/.."

lints='unwrap_used|expect_used|too_many_lines|many_single_char_names|unreachable_pub'
test_root='^#!\[allow\(clippy::unwrap_used, clippy::expect_used, unreachable_pub\)\] // Test code: '
fail=0

while IFS= read -r hit; do
  file=${hit%%:*}
  rest=${hit#*:}
  text=${rest#*:}
  if [[ $text == *"lint-exception:"* ]]; then
    continue
  fi
  if [[ $file =~ /(tests|benches)/[^/]+\.rs$ ]] && [[ $text =~ $test_root ]]; then
    continue
  fi
  echo "unmarked lint exception (add // lint-exception: why): $hit"
  fail=1
done < <(grep -rnE --include='*.rs' "#!?\[(allow|expect)\([^]]*($lints)" crates || true)

count=$(grep -rn --include='*.rs' 'lint-exception:' crates | wc -l)
budget=$(tr -d '[:space:]' < .ci/lint-budget.txt)
if (( count > budget )); then
  echo "lint exceptions: $count, over the budget of $budget: fix the code instead of marking it"
  fail=1
elif (( count < budget )); then
  echo "lint exceptions: $count, under the budget of $budget: lower .ci/lint-budget.txt to $count"
  fail=1
else
  echo "lint exceptions: $count (budget $budget)"
fi
exit $fail
