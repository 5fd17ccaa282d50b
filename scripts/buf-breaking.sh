#!/usr/bin/env bash
# Breaking-change check of the schema against the last commit on main.
#  - on another branch, or with uncommitted schema changes: against main's tip (or HEAD);
#  - on main with a clean schema: against the commit before HEAD (did the last landing break v1?).
# Skips, saying why, when there is no such commit or it has no schema yet.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=$PWD/.tools/buf/node_modules/.bin/buf

if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "buf breaking: not a git checkout; skipped"; exit 0
fi
branch=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo "")
if [ "$branch" != "main" ] && git rev-parse -q --verify main >/dev/null; then
  base=$(git rev-parse main)
elif [ -n "$(git status --porcelain -- proto 2>/dev/null)" ] && git rev-parse -q --verify HEAD >/dev/null; then
  base=$(git rev-parse HEAD)
elif git rev-parse -q --verify HEAD~1 >/dev/null; then
  base=$(git rev-parse HEAD~1)
else
  echo "buf breaking: no earlier commit on main to compare with; skipped"; exit 0
fi
if ! git cat-file -e "$base:proto/buf.yaml" 2>/dev/null; then
  echo "buf breaking: ${base:0:12} has no schema yet; skipped"; exit 0
fi
echo "buf breaking: proto/ against ${base:0:12}"
cd proto
"$BUF" breaking --against "../.git#ref=$base,subdir=proto"
